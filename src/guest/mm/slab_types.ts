/**
 * The slab allocator's state (mm/slab.h's struct kmem_cache and struct slab, SLUB's
 * kmem_cache_node) and the VFS caches built on it (the superblock's dentry and inode
 * LRUs), as plain types with no dependencies on the code that works on them, so that
 * the node (mmzone.ts) can hold them without importing slab.ts or dcache.ts.
 *
 * No object per object: a cache keeps one record per slab in parallel typed arrays
 * indexed by a small slab id, and the objects themselves are only counted — per slab
 * (inuse) and, where the model cares which object goes first, as a ring of slab ids
 * in allocation order (ObjRing), one entry per live object.
 */
/**
 * A growable ring of int32 (slab ids): one entry per live object, oldest at `head`.
 * push() adds the newest; shift() takes the oldest, pop() the newest.
 */
export type ObjRing = {
  buf: Int32Array;
  /** Index of the oldest entry. */
  head: number;
  /** Entries held. */
  len: number;
};

/** Where a slab is (SLUB keeps full slabs on no list at all without SLUB_DEBUG's tracking). */
export const enum SlabState {
  /** The id is free (no slab). */
  none = 0,
  /** On the node's partial list (some objects free, possibly all). */
  partial = 1,
  /** Every object in use, on no list. */
  full = 2,
  /** A cpu's active slab (c->slab, "frozen"): allocations take from it first; it is never freed while active. */
  cpu = 3,
}

/** SLAB_* cache flags the model distinguishes (include/linux/slab.h values). */
export const enum SlabFlag {
  /** SLAB_CACHE_DMA: slabs come from ZONE_DMA (GFP_DMA). */
  cacheDma = 0x4000,
  /** SLAB_RECLAIM_ACCOUNT: objects are reclaimable (dentries, inodes): __GFP_RECLAIMABLE slabs, counted as SReclaimable. */
  reclaimAccount = 0x20000,
}

/** struct kmem_cache (SLUB) with its one kmem_cache_node and its per-cpu slabs. */
export type KmemCache = {
  /** Index in SlabCaches.caches; kept in the slab pages' mapping field (page->slab_cache). */
  id: number;
  name: string;
  /** s->size: the object with its metadata, aligned (what /proc/slabinfo prints as objsize). */
  size: number;
  /** SLAB_* flags (SlabFlag). */
  flags: number;
  /** oo_order(s->oo), oo_objects(s->oo): the order of a slab and the objects it holds (calculate_order). */
  order: number;
  objects: number;
  /** s->min: the smallest order that holds one object, used when the preferred order cannot be had. */
  minOrder: number;
  minObjects: number;
  /** s->min_partial: empty slabs kept on the partial list, ilog2(size) / 2 clamped to [5, 10]. */
  minPartial: number;
  /** s->allocflags: GFP bits added to every slab allocation (__GFP_COMP, __GFP_RECLAIMABLE, GFP_DMA). */
  allocflags: number;
  /** The page owner of its slabs: Owner.slabReclaimable for SLAB_RECLAIM_ACCOUNT caches, else Owner.slabUnreclaimable. */
  owner: number;

  // --- struct slab, one record per slab id
  /** The slab's head pfn. */
  slabPfn: Int32Array;
  /** Objects in use (slab->inuse). */
  slabInuse: Uint16Array;
  /** Objects the slab holds (slab->objects: `objects`, or `minObjects` for a fallback slab). */
  slabObjects: Uint16Array;
  /** The slab's compound order. */
  slabOrder: Uint8Array;
  /** SlabState. */
  slabState: Uint8Array;
  /** slab->slab_list on the node's partial list: next and previous ids, -1 at the ends. */
  slabNext: Int32Array;
  slabPrev: Int32Array;
  /** Ids handed out so far (ids below it are slabs or on freeIds). */
  nrIds: number;
  /** Ids of freed slabs, reused first (a stack of nrFreeIds entries). */
  freeIds: Int32Array;
  nrFreeIds: number;

  // --- struct kmem_cache_node
  /** n->partial: head and tail ids (-1 when empty), n->nr_partial. */
  partialHead: number;
  partialTail: number;
  nrPartial: number;
  /** n->nr_slabs, n->total_objects. */
  nrSlabs: number;
  totalObjects: number;
  /** Objects in use in all slabs. */
  inuse: number;
  /** Pages of all slabs. */
  pages: number;

  /** c->slab per cpu: the active slab's id, -1 when none. */
  cpuSlab: Int32Array;

  /** Objects allocated through kmemCacheAlloc, in allocation order (what kmemCacheFree takes from). */
  lru: ObjRing;
  /** Objects that are never freed (boot's long-lived objects): counted in their slabs, in no ring. */
  pinned: number;
  /** Objects held in rings outside the cache (the superblock's dentry LRU, file sets' inodes...). */
  external: number;
};

/** The caches the model's hooks use, by role. */
export type StdCaches = {
  dentry: KmemCache;
  /** ext4_inode_cache: the model's files live on an ext4 root file system. */
  inode: KmemCache;
  /** lsm_inode_cache: each inode's LSM security blob (unreclaimable, freed with the inode). */
  lsmInode: KmemCache;
  /** ext4_extent_status: an inode's cached extent (reclaimable), one per file. */
  extentStatus: KmemCache;
  bufferHead: KmemCache;
  radixTreeNode: KmemCache;
  procInode: KmemCache;
  vmAreaStruct: KmemCache;
  anonVma: KmemCache;
  anonVmaChain: KmemCache;
  taskStruct: KmemCache;
  mmStruct: KmemCache;
  signalCache: KmemCache;
  sighandCache: KmemCache;
  filesCache: KmemCache;
  credJar: KmemCache;
  pid: KmemCache;
  /** kmalloc-8 ... kmalloc-8k by kmalloc_index (KMALLOC_NORMAL). */
  kmalloc: KmemCache[];
};

/**
 * The files of one file set: what a process reads and writes through readFilePages
 * (a process stands for the files it touches; the pages carry its pid). Inodes, their
 * LSM blobs and extent-status entries are kept in creation order, one entry per file.
 */
export type FileSet = {
  pid: number;
  /** Bumped when the set's files are deleted: older dentries of the set are negative from then on. */
  gen: number;
  /** Files (inodes) alive. */
  files: number;
  /** Positive dentries alive (the newest `dentries` files still have theirs). */
  dentries: number;
  /** Files being made right now (their dentries not yet allocated): never on the inode LRU. */
  pending: number;
  /** Pages of the open-ended file readFilePages grows when no file size is given; -1 when there is none. */
  growPages: number;
  /** Pages and files ever added: the set's mean file size. */
  pagesTotal: number;
  filesTotal: number;
  /** Page-cache pages of the set still cached. */
  cachedPages: number;
  /** The files' inode, LSM blob and extent-status objects (slab ids), oldest file first. */
  inodes: ObjRing;
  lsm: ObjRing;
  es: ObjRing;
  /** buffer_heads of written pages and xarray nodes of the files' page trees (slab ids), oldest first. */
  bh: ObjRing;
  xa: ObjRing;
  /** Fractions of a buffer_head and of an xarray node owed by pages already freed. */
  bhOwed: number;
  xaOwed: number;
};

/**
 * The root file system's struct super_block: its dentry LRU (s_dentry_lru) and the file
 * sets whose inodes it holds (s_inode_lru is derived from them); its shrinker
 * (super_cache_count / super_cache_scan) is on pgdat.shrinkers.
 */
export type SuperBlock = {
  sets: Map<number, FileSet>;
  /** Unused dentries (positive and negative) in LRU order: slab ids, oldest first. */
  dentryLru: ObjRing;
  /**
   * Which set each stretch of dentryLru belongs to, oldest first: parallel arrays from
   * runHead on (pid, the set's gen when they were made, how many).
   */
  runPid: number[];
  runGen: number[];
  runCount: number[];
  runHead: number;
  /** Negative dentries (of deleted files) still on the LRU. */
  negDentries: number;
};

/** The node's slab world: every kmem_cache (slab_caches), the standard ones by role, the root superblock. */
export type SlabCaches = {
  /** In creation order; /proc/slabinfo lists them newest first. */
  caches: KmemCache[];
  byName: Map<string, KmemCache>;
  /** Null until kmem_cache_init (boot) has run. */
  std: StdCaches | null;
  /** The root file system; null until boot mounts it. */
  sb: SuperBlock | null;
  /** Slab pages given back to the buddy allocator so far (reclaim credits the ones freed while it runs: reclaim_state->reclaimed_slab). */
  freedPages: number;
};
