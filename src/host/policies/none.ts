/**
 * `none`: no balloon policy. Every VM keeps the size it was started with (or what its
 * own timeline sets with `balloon`); the host copes by swapping and, past its swap,
 * by its OOM killer. The baseline every other policy is compared with.
 */
import { definePolicy } from './policy.js';

export const nonePolicy = definePolicy<Record<string, never>>({
  name: 'none',
  doc: 'no policy: static guest sizes; the host swaps and OOM-kills',
  create: () => ({ name: 'none', intervalNs: 0, statsPollingInterval: 0, run: () => [] }),
});
