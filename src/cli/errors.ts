/**
 * CLI error classes (exit codes: docs/cli.md §1). Commands throw these; `main` prints the message on stderr
 * and returns the exit code. Anything else thrown is an internal error (exit 1).
 */

/** An error whose message is for the user, with the process exit code to use. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = 1,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad input or usage (exit 2): the message says what is wrong and how to fix it. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2);
  }
}
