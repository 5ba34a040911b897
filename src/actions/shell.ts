/**
 * A command in a real guest's shell. The model guest has no shell: a scenario with
 * this action runs on real guests only (in a differential run the model side records
 * it as skipped).
 */
import { defineAction } from './action.js';
import { str, time } from './fields.js';

export const shell = defineAction({
  name: 'shell',
  doc: 'Runs a command in the real guest\'s shell and records its output and exit status (real guests only)',
  fields: {
    cmd: str('The command line'),
    timeout: time('How long it may take', { default: 60e9 }),
  },
  real: {
    engines: ['v86', 'qemu'],
    run: async (ctx, a) => {
      const r = await ctx.shell(a.cmd, a.timeout);
      return { status: r.status, output: r.output };
    },
  },
});
