/** One size of `bench scale`, in a process of its own (its peak RSS is the size's); the result goes back over IPC. */
import { runScalePhases } from './scale.js';

const bytes = Number(process.argv[2]);
process.send!(runScalePhases(bytes), () => process.exit(0));
