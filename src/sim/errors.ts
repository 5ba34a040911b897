/**
 * The one error class for bad input: a scenario, a command line or a configuration the
 * user can fix. Everything that throws it names where the problem is and what is allowed,
 * in one line; the CLI prints that line and exits 2. (A broken model invariant is
 * InvariantError, exit 1; anything else is a bug, exit 70.) The subclasses only say which
 * front door refused the input.
 */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}
