// Probe and metrics endpoints with controller-runtime's shape: /healthz and /readyz answer `ok`,
// or list every check as `[+]name ok` / `[-]name failed: reason` with status 500; `?verbose`
// lists them on success too, `?exclude=name` skips a check and /readyz/<name> runs a single one.
// One difference: controller-runtime withholds failure reasons; here the reason is shown (scrubbed
// of secrets) because the probe address is loopback unless the operator is told otherwise, and
// "informer for edgedeployments not synced" is what a person running `curl` needs to see.
//
// Addresses: probes default to 127.0.0.1:8081 and metrics to 127.0.0.1:8080, as controller-runtime
// separates them; give both the same address to serve everything from one server. In a pod, pass
// 0.0.0.0:<port> so the kubelet and Prometheus can reach them.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { withDeadline } from './deadline.ts';
import { scrubSecrets, silentLogger } from './logger.ts';
import type { Logger } from './logger.ts';

/** Throws (or rejects, or returns false) when unhealthy; the error message becomes the reason. */
export type Check = () => void | boolean | Promise<void | boolean>;

export const defaultProbeAddress = '127.0.0.1:8081';
export const defaultMetricsAddress = '127.0.0.1:8080';

export interface CheckStatus {
  name: string;
  healthy: boolean;
  reason?: string;
}

export interface CheckReport {
  healthy: boolean;
  checks: CheckStatus[];
}

export interface HealthChecksOptions {
  /** A check that has not answered within this time fails. */
  checkTimeoutMs?: number;
  /** /healthz fails when the event loop was blocked longer than this… */
  eventLoopStallMs?: number;
  /** …at any time within this window before the probe. */
  eventLoopWindowMs?: number;
}

/** Liveness and readiness checks. Liveness has `ping` and `event-loop` built in. */
export class HealthChecks {
  readonly #health = new Map<string, Check>();
  readonly #readiness = new Map<string, Check>();
  readonly #checkTimeoutMs: number;
  readonly #stallMs: number;
  readonly #windowMs: number;
  #heartbeat: NodeJS.Timeout | undefined;
  #lastBeat = 0;
  #lastStall: { ms: number; at: number } | undefined;

  constructor(options: HealthChecksOptions = {}) {
    this.#checkTimeoutMs = options.checkTimeoutMs ?? 5_000;
    this.#stallMs = options.eventLoopStallMs ?? 10_000;
    this.#windowMs = options.eventLoopWindowMs ?? 30_000;
    this.#health.set('ping', () => undefined);
    this.#health.set('event-loop', () => this.#checkEventLoop());
  }

  addHealthCheck(name: string, check: Check): void {
    addCheck(this.#health, name, check);
  }

  addReadinessCheck(name: string, check: Check): void {
    addCheck(this.#readiness, name, check);
  }

  /**
   * Starts the heartbeat that measures event-loop stalls. A server starts it; call it yourself
   * only when evaluating checks without one.
   */
  startHeartbeat(): void {
    if (this.#heartbeat) return;
    const periodMs = Math.max(10, Math.min(1_000, Math.floor(this.#stallMs / 4)));
    this.#lastBeat = performance.now();
    this.#heartbeat = setInterval(() => {
      const now = performance.now();
      // A timer that fires late by more than the threshold means nothing else could run either.
      const late = now - this.#lastBeat - periodMs;
      this.#lastBeat = now;
      if (late > this.#stallMs) this.#lastStall = { ms: late, at: now };
    }, periodMs);
    this.#heartbeat.unref();
  }

  stopHeartbeat(): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }

  #checkEventLoop(): void {
    const stall = this.#lastStall;
    if (stall && performance.now() - stall.at <= this.#windowMs) {
      throw new Error(`event loop blocked for ${Math.round(stall.ms)} ms within the last ${Math.round(this.#windowMs / 1000)} s`);
    }
  }

  async evaluate(kind: 'healthz' | 'readyz', options: { only?: string; exclude?: readonly string[] } = {}): Promise<CheckReport> {
    const registered = kind === 'healthz' ? this.#health : this.#readiness;
    let selected = [...registered].filter(([name]) => !(options.exclude ?? []).includes(name));
    if (options.only !== undefined) selected = selected.filter(([name]) => name === options.only);
    const checks = await Promise.all(selected.map(([name, check]) => this.#run(name, check)));
    // controller-runtime reports `ping` when nothing is registered, so an empty /readyz is still an answer.
    if (checks.length === 0 && options.only === undefined) checks.push({ name: 'ping', healthy: true });
    checks.sort((a, b) => a.name.localeCompare(b.name));
    return { healthy: checks.every((c) => c.healthy), checks };
  }

  has(kind: 'healthz' | 'readyz', name: string): boolean {
    return (kind === 'healthz' ? this.#health : this.#readiness).has(name);
  }

  async #run(name: string, check: Check): Promise<CheckStatus> {
    try {
      const outcome = await withDeadline(Promise.resolve().then(check), this.#checkTimeoutMs, `check ${name}`);
      return outcome === false ? { name, healthy: false, reason: 'check returned false' } : { name, healthy: true };
    } catch (error) {
      return { name, healthy: false, reason: scrubSecrets(error instanceof Error ? error.message : String(error)) };
    }
  }
}

function addCheck(checks: Map<string, Check>, name: string, check: Check): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new Error(`health check name "${name}": use letters, digits, ".", "_" and "-" (it becomes a URL path)`);
  if (checks.has(name)) throw new Error(`health check "${name}" is already registered`);
  checks.set(name, check);
}

/** `[+]a ok` / `[-]b failed: reason` lines, the body controller-runtime sends. */
export function formatReport(kind: 'healthz' | 'readyz', report: CheckReport): string {
  const lines = report.checks.map((c) => (c.healthy ? `[+]${c.name} ok` : `[-]${c.name} failed: ${c.reason ?? 'reason withheld'}`));
  return `${lines.join('\n')}\n${kind} check ${report.healthy ? 'passed' : 'failed'}\n`;
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** `127.0.0.1:8081`, `0.0.0.0:8080`, `:8080` (all interfaces, as in Go) or `[::1]:8081`. */
export function parseListenAddress(address: string): ListenAddress {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(address.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65_535) throw new Error(`listen address "${address}": expected host:port, e.g. 127.0.0.1:8081 or :8080`);
  const host = match[1] ?? match[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

/** What /metrics serves: the operator's metrics, or any other Prometheus registry (the edge hub's). */
export interface MetricsSource {
  readonly contentType: string;
  text(): Promise<string>;
}

export interface OperatorHttpServerOptions {
  /** host:port; port 0 picks a free port (tests). */
  address: string;
  /** Serve /healthz and /readyz from these checks. */
  checks?: HealthChecks;
  /** Serve /metrics from this registry. */
  metrics?: MetricsSource;
  /** More read-only JSON documents by path (the edge hub's /status), served beside /metrics. */
  documents?: Record<string, () => unknown>;
  logger?: Logger;
}

/** An HTTP server for probes, metrics or both. */
export class OperatorHttpServer {
  readonly #options: OperatorHttpServerOptions;
  readonly #logger: Logger;
  #server: Server | undefined;

  constructor(options: OperatorHttpServerOptions) {
    if (!options.checks && !options.metrics && !options.documents) throw new Error('OperatorHttpServer: give checks, metrics or both, or there is nothing to serve');
    this.#options = options;
    this.#logger = options.logger ?? silentLogger();
  }

  async start(): Promise<ListenAddress> {
    if (this.#server) throw new Error('OperatorHttpServer already started');
    const { host, port } = parseListenAddress(this.#options.address);
    const server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        this.#logger.error({ err: error, path: req.url }, 'health server request failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('internal error\n');
      });
    });
    // Probes are short; idle keep-alive connections would only delay shutdown.
    server.keepAliveTimeout = 1_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
    this.#options.checks?.startHeartbeat();
    const bound = this.address;
    this.#logger.info({ address: `${bound.host}:${bound.port}`, serves: this.#paths() }, 'serving operator HTTP endpoints');
    return bound;
  }

  get address(): ListenAddress {
    const info = this.#server?.address() as AddressInfo | null | undefined;
    if (!info) throw new Error('OperatorHttpServer is not listening');
    return { host: info.address, port: info.port };
  }

  /** A loopback URL for this server, for tests and local tools. */
  get url(): string {
    const { host, port } = this.address;
    const dialable = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
    return `http://${dialable}:${port}`;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    this.#options.checks?.stopHeartbeat();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  #paths(): string[] {
    return [...(this.#options.checks ? ['/healthz', '/readyz'] : []), ...(this.#options.metrics ? ['/metrics'] : []), ...Object.keys(this.#options.documents ?? {})];
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://probe');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
      return;
    }
    const metrics = this.#options.metrics;
    if (metrics && url.pathname === '/metrics') {
      send(res, 200, await metrics.text(), { 'content-type': metrics.contentType });
      return;
    }
    const document = this.#options.documents?.[url.pathname];
    if (document) {
      send(res, 200, `${JSON.stringify(document())}\n`, { 'content-type': 'application/json; charset=utf-8' });
      return;
    }
    const checks = this.#options.checks;
    const probe = /^\/(healthz|readyz)(?:\/([^/]+))?\/?$/.exec(url.pathname);
    if (checks && probe) {
      const kind = probe[1] as 'healthz' | 'readyz';
      const only = probe[2] === undefined ? undefined : decodeURIComponent(probe[2]);
      if (only !== undefined && !checks.has(kind, only)) {
        send(res, 404, `no ${kind} check named ${only}\n`);
        return;
      }
      const exclude = url.searchParams.getAll('exclude').flatMap((e) => e.split(','));
      const report = await checks.evaluate(kind, { ...(only === undefined ? {} : { only }), exclude });
      if (!report.healthy) {
        this.#logger.info({ probe: kind, failed: report.checks.filter((c) => !c.healthy) }, `${kind} check failed`);
        send(res, 500, formatReport(kind, report));
      } else if (url.searchParams.has('verbose')) {
        send(res, 200, formatReport(kind, report));
      } else {
        send(res, 200, 'ok');
      }
      return;
    }
    send(res, 404, `not found; this server serves ${this.#paths().join(', ')}\n`);
  }
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

export interface OperatorEndpoints {
  servers: OperatorHttpServer[];
  stop(): Promise<void>;
}

/**
 * Starts the probe server and the metrics server; when both addresses are the same, one server
 * serves everything. An address of "0" disables that endpoint, like controller-runtime's
 * `--metrics-bind-address=0`.
 */
export async function startOperatorEndpoints(options: {
  probeAddress?: string;
  metricsAddress?: string;
  checks: HealthChecks;
  metrics: MetricsSource;
  /** Served by the metrics server (see OperatorHttpServerOptions.documents). */
  documents?: Record<string, () => unknown>;
  logger?: Logger;
}): Promise<OperatorEndpoints> {
  const probeAddress = options.probeAddress ?? defaultProbeAddress;
  const metricsAddress = options.metricsAddress ?? defaultMetricsAddress;
  const logger = options.logger;
  const documents = options.documents ? { documents: options.documents } : {};
  const planned: OperatorHttpServer[] = [];
  if (probeAddress !== '0' && probeAddress === metricsAddress) {
    planned.push(new OperatorHttpServer({ address: probeAddress, checks: options.checks, metrics: options.metrics, ...documents, ...(logger ? { logger } : {}) }));
  } else {
    if (probeAddress !== '0') planned.push(new OperatorHttpServer({ address: probeAddress, checks: options.checks, ...(logger ? { logger } : {}) }));
    if (metricsAddress !== '0') planned.push(new OperatorHttpServer({ address: metricsAddress, metrics: options.metrics, ...documents, ...(logger ? { logger } : {}) }));
  }
  const started: OperatorHttpServer[] = [];
  try {
    for (const server of planned) {
      await server.start();
      started.push(server);
    }
  } catch (error) {
    await Promise.all(started.map((s) => s.stop()));
    throw error;
  }
  return {
    servers: started,
    stop: async () => {
      await Promise.all(started.map((s) => s.stop()));
    },
  };
}
