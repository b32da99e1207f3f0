// Graceful shutdown on SIGTERM/SIGINT, in the order controller-runtime's manager stops things:
// register "stop intake" (informers, leader-election renewals of new work), then "drain" (wait for
// in-flight reconciles), then "release lease". Handlers run one after another, once, under one
// overall deadline (30 s, controller-runtime's GracefulShutdownTimeout; keep it below the pod's
// terminationGracePeriodSeconds). The process then exits 0, or 1 if a handler failed or the
// deadline passed. A second signal means "now": exit 1 at once, as a second Ctrl-C does for Go
// operators.
import { withDeadline } from './deadline.ts';
import { silentLogger } from './logger.ts';
import type { Logger } from './logger.ts';

export type ShutdownHandler = (signal: NodeJS.Signals) => void | Promise<void>;

export interface ShutdownOptions {
  /** Overall deadline for all handlers together. Default 30 s. */
  timeoutMs?: number;
  logger?: Logger;
  /** How to end the process; tests of the sequencing pass their own. Default process.exit. */
  exit?: (code: number) => void;
  signals?: readonly NodeJS.Signals[];
}

export const defaultGracefulShutdownMs = 30_000;

export class ShutdownCoordinator {
  readonly #handlers: { name: string; handler: ShutdownHandler }[] = [];
  readonly #begun = new AbortController();
  #timeoutMs: number;
  #logger: Logger;
  #exit: (code: number) => void;
  readonly #signals: readonly NodeJS.Signals[];
  #installed = false;
  #running: Promise<number> | undefined;

  constructor(options: ShutdownOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? defaultGracefulShutdownMs;
    this.#logger = options.logger ?? silentLogger();
    this.#exit = options.exit ?? ((code) => process.exit(code));
    this.#signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  }

  /** Aborts as soon as shutdown begins, for loops that should stop taking new work. */
  get signal(): AbortSignal {
    return this.#begun.signal;
  }

  configure(options: Pick<ShutdownOptions, 'timeoutMs' | 'logger' | 'exit'>): void {
    if (options.timeoutMs !== undefined) this.#timeoutMs = options.timeoutMs;
    if (options.logger) this.#logger = options.logger;
    if (options.exit) this.#exit = options.exit;
  }

  /** Adds a handler after those already added; returns a function that removes it again. */
  add(name: string, handler: ShutdownHandler): () => void {
    const entry = { name, handler };
    this.#handlers.push(entry);
    return () => {
      const at = this.#handlers.indexOf(entry);
      if (at >= 0) this.#handlers.splice(at, 1);
    };
  }

  install(): this {
    if (this.#installed) return this;
    this.#installed = true;
    for (const signal of this.#signals) process.on(signal, this.#onSignal);
    return this;
  }

  uninstall(): void {
    if (!this.#installed) return;
    this.#installed = false;
    for (const signal of this.#signals) process.off(signal, this.#onSignal);
  }

  readonly #onSignal = (signal: NodeJS.Signals): void => {
    if (this.#running) {
      this.#logger.warn({ signal }, 'second signal during graceful shutdown; exiting now');
      this.#exit(1);
      return;
    }
    void this.shutdown(signal).then((code) => this.#exit(code));
  };

  /**
   * Runs the handlers in order, once; later calls return the first run's outcome.
   * Resolves to the exit code: 0 when every handler finished in time, 1 otherwise.
   */
  shutdown(signal: NodeJS.Signals = 'SIGTERM'): Promise<number> {
    this.#running ??= this.#run(signal);
    return this.#running;
  }

  async #run(signal: NodeJS.Signals): Promise<number> {
    this.#begun.abort(new Error(`shutdown on ${signal}`));
    this.#logger.info({ signal, handlers: this.#handlers.map((h) => h.name), timeoutMs: this.#timeoutMs }, 'graceful shutdown started');
    let failed = false;
    const sequence = (async () => {
      for (const { name, handler } of [...this.#handlers]) {
        try {
          await handler(signal);
          this.#logger.info({ step: name }, 'shutdown step done');
        } catch (error) {
          failed = true;
          this.#logger.error({ step: name, err: error }, 'shutdown step failed; continuing with the next');
        }
      }
    })();
    try {
      await withDeadline(sequence, this.#timeoutMs, 'graceful shutdown');
    } catch (error) {
      this.#logger.error({ err: error }, 'graceful shutdown did not finish in time');
      return 1;
    }
    this.#logger.info({ failed }, 'graceful shutdown finished');
    return failed ? 1 : 0;
  }
}

let processCoordinator: ShutdownCoordinator | undefined;

/** The process-wide coordinator behind onShutdownSignal, created on first use. */
export function processShutdown(): ShutdownCoordinator {
  processCoordinator ??= new ShutdownCoordinator().install();
  return processCoordinator;
}

/**
 * Runs `handler` on SIGTERM/SIGINT, after the handlers registered before it. Options given here
 * apply to the whole process-wide sequence (the last given wins). Returns a function that removes
 * the handler.
 */
export function onShutdownSignal(handler: ShutdownHandler, options: Pick<ShutdownOptions, 'timeoutMs' | 'logger' | 'exit'> & { name?: string } = {}): () => void {
  const coordinator = processShutdown();
  coordinator.configure(options);
  return coordinator.add(options.name ?? (handler.name || 'anonymous handler'), handler);
}
