/**
 * The split ring's layout (VIRTIO 1.2 §2.7; include/uapi/linux/virtio_ring.h): the
 * descriptor flags, the three parts' sizes and alignments, one small function per
 * field offset, and the event-index rule. Shared by the driver and device halves
 * (virtqueue.ts) and by the transport, which checks a queue's placement.
 *
 *   Descriptor table  align 16, 16 * size   struct virtq_desc { le64 addr; le32 len; le16 flags; le16 next; }
 *   Available ring    align 2,  6 + 2*size  struct virtq_avail { le16 flags; le16 idx; le16 ring[size]; le16 used_event; }
 *   Used ring         align 4,  6 + 8*size  struct virtq_used { le16 flags; le16 idx; { le32 id; le32 len; } ring[size]; le16 avail_event; }
 */

export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
export const VIRTQ_USED_F_NO_NOTIFY = 1;
/** The spec's largest queue size. */
export const VIRTQUEUE_MAX_SIZE = 32768;

/** Where a queue's three parts live, and whether VIRTIO_F_EVENT_IDX was negotiated. */
export type VirtqLayout = {
  size: number;
  descAddr: number;
  availAddr: number;
  usedAddr: number;
  eventIdx: boolean;
};

/** Bytes each part needs (for the driver's allocation). */
export function virtqPartSizes(size: number): { desc: number; avail: number; used: number } {
  return { desc: 16 * size, avail: 6 + 2 * size, used: 6 + 8 * size };
}

/** vring_need_event(): notify iff new passed event since old (all u16, wrapping). */
export function vringNeedEvent(event: number, newIdx: number, old: number): boolean {
  return ((newIdx - event - 1) & 0xffff) < ((newIdx - old) & 0xffff);
}

// One small function per ring field (byte offsets from the spec).

export const descAddrOf = (l: VirtqLayout, i: number): number => l.descAddr + 16 * i;
export const availFlags = (l: VirtqLayout): number => l.availAddr;
export const availIdx = (l: VirtqLayout): number => l.availAddr + 2;
export const availRing = (l: VirtqLayout, i: number): number => l.availAddr + 4 + 2 * i;
export const usedEvent = (l: VirtqLayout): number => l.availAddr + 4 + 2 * l.size;
export const usedFlags = (l: VirtqLayout): number => l.usedAddr;
export const usedIdx = (l: VirtqLayout): number => l.usedAddr + 2;
export const usedRingId = (l: VirtqLayout, i: number): number => l.usedAddr + 4 + 8 * i;
export const usedRingLen = (l: VirtqLayout, i: number): number => l.usedAddr + 8 + 8 * i;
export const availEvent = (l: VirtqLayout): number => l.usedAddr + 4 + 8 * l.size;
