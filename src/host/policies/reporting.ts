/**
 * `reporting`: free page reporting and no balloon policy — what libvirt's
 * `<memballoon><freePageReporting>on` (and KubeVirt's default) amounts to. Every VM
 * starts with the device's free-page-reporting property on, so the guest's
 * page_reporting worker hands its free 2 MiB+ blocks to the host, which discards them
 * (QEMU virtio_balloon_handle_report); nobody sets a balloon target.
 */
import { definePolicy } from './policy.js';

export const reportingPolicy = definePolicy<Record<string, never>>({
  name: 'reporting',
  doc: 'free page reporting on every VM, no balloon targets (libvirt freePageReporting=on)',
  device: { freePageReporting: true },
  create: () => ({ name: 'reporting', intervalNs: 0, statsPollingInterval: 0, run: () => [] }),
});
