/**
 * Where a process's page cache lies in files, the way the model's file sets count it
 * (src/guest/mm/dcache.ts vfsFilePagesAdded): a process_file call's pages fill the
 * process's last file up to `file_size` pages, then go to new files of that many pages
 * (the last one shorter, filled up by the next call); without file_size the process has
 * one file that grows. The real QEMU side names the files `p<pid>.<n>` on its scratch
 * file system and hands bl-file (scripts/real-guest/qemu/bl-file.c) where a call starts;
 * before boot the host puts every page a `process_file` read will read into the disk
 * image (planScratch), so a read reads from the disk, not from the page cache.
 */
import { PAGE_SIZE } from '../guest/mm/memmap.js';

/** A process's file stream: how many files it has, and the pages of its last one (-1: no file yet). */
export type FileStream = { files: number; lastPages: number };

/** One file's part of a call: pages [off, off + pages) of file `file`. */
export type FileChunk = { file: number; off: number; pages: number };

/** A call's place in the stream: its first file and page, its chunks, the stream after it. */
export type FileStep = { first: number; off: number; chunks: FileChunk[]; next: FileStream };

export const NEW_STREAM: FileStream = { files: 0, lastPages: -1 };

/** Where `pages` pages of a call with files of `filePages` pages (undefined or 0: one unbounded file) go. */
export function fileStep(st: FileStream, pages: number, filePages: number | undefined): FileStep {
  const size = filePages !== undefined && filePages > 0 ? filePages : Infinity;
  const grow = st.lastPages >= 0 && st.lastPages < size;
  let file = grow ? st.files - 1 : st.files, off = grow ? st.lastPages : 0;
  const first = file, off0 = off;
  const chunks: FileChunk[] = [];
  let left = pages, lastPages = st.lastPages, files = st.files;
  while (left > 0) {
    const n = Math.min(left, size - off);
    chunks.push({ file, off, pages: n });
    left -= n;
    lastPages = off + n;
    files = file + 1;
    file++;
    off = 0;
  }
  return { first, off: off0, chunks, next: pages > 0 ? { files, lastPages } : st };
}

/** The pages of a process_file entry (its size rounded up to whole pages) and its files' size in pages. */
export function fileEntryPages(a: { size: number; file_size?: number | undefined }): { pages: number; filePages: number | undefined } {
  return { pages: Math.ceil(a.size / PAGE_SIZE), filePages: a.file_size === undefined ? undefined : Math.ceil(a.file_size / PAGE_SIZE) };
}

/** What the scratch file system must hold before boot, and how large it must be. */
export type ScratchPlan = {
  /** The image's size, bytes. */
  bytes: number;
  /** Inodes to make room for (mke2fs -N). */
  inodes: number;
  /** Pages every read will read, by file name: they are written into the image before boot. */
  prepared: Array<{ name: string; off: number; pages: number }>;
  /** process_file entries (pages read or written, files touched). */
  pages: number;
  files: number;
};

const MiB = 2 ** 20;

/**
 * The scratch disk a timeline's process_file entries need (null: there are none): the
 * file streams replayed over the entries in order, what the reads need on the disk,
 * and a size with room for every page written or read, one block per file more, and
 * ext4's metadata and journal (1/8 more and 256 MiB, rounded up to 64 MiB, at least 1 GiB).
 */
/** A process_file entry as planScratch reads it. */
export type FileEntry = { pid: number; size: number; dirty: boolean; file_size?: number | undefined };

export function planScratch(entries: ReadonlyArray<FileEntry>): ScratchPlan | null {
  const streams = new Map<number, FileStream>();
  const prepared: ScratchPlan['prepared'] = [];
  let pages = 0, files = 0, any = false;
  for (const a of entries) {
    any = true;
    const { pages: n, filePages } = fileEntryPages(a);
    const st = fileStep(streams.get(a.pid) ?? NEW_STREAM, n, filePages);
    streams.set(a.pid, st.next);
    pages += n;
    files += st.chunks.length;
    if (!a.dirty) for (const c of st.chunks) prepared.push({ name: `p${a.pid}.${c.file}`, off: c.off, pages: c.pages });
  }
  if (!any) return null;
  const raw = (pages + files) * PAGE_SIZE;
  const bytes = Math.max(1024 * MiB, Math.ceil((raw * 1.125 + 256 * MiB) / (64 * MiB)) * 64 * MiB);
  return { bytes, inodes: files + 4096, prepared, pages, files };
}
