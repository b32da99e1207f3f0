// A small typed REST layer over the Kubernetes API: get, paginated list and a watch stream.
// It does its own HTTP with node:http(s) and takes TLS material and credentials from a KubeConfig,
// because @kubernetes/client-node's calls have no default deadline (#2432) and its Watch
// gives no control over the stream. Every non-watch request has a deadline; a watch has a
// deadline until its response headers arrive, and after that the caller owns its lifetime
// (the informer runs an inactivity timer on it).
import http from 'node:http';
import https from 'node:https';
import { StringDecoder } from 'node:string_decoder';
import type { IncomingMessage } from 'node:http';
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { TimeoutError } from '../runtime/deadline.ts';

/** The part of a pino logger the controller uses; pino's own Logger satisfies it. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};

/** The body of a Kubernetes error response or watch ERROR event. */
export interface KubeStatus {
  kind?: string;
  apiVersion?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: unknown;
}

/** A non-2xx answer from the API server, or an ERROR event inside a watch stream. */
export class KubeApiError extends Error {
  override name = 'KubeApiError';
  readonly status: number;
  readonly reason: string | undefined;
  readonly method: string;
  readonly path: string;
  readonly body: KubeStatus | undefined;
  /** True when the error arrived as an ERROR event inside an open watch rather than as an HTTP status. */
  readonly inWatchStream: boolean;
  constructor(init: { status: number; method: string; path: string; body?: KubeStatus; inWatchStream?: boolean }) {
    const detail = init.body?.message ?? init.body?.reason ?? '';
    super(`${init.method} ${init.path}: ${init.status}${init.body?.reason ? ` ${init.body.reason}` : ''}${detail ? `: ${detail}` : ''}${init.inWatchStream ? ' (watch ERROR event)' : ''}`);
    this.status = init.status;
    this.reason = init.body?.reason;
    this.method = init.method;
    this.path = init.path;
    this.body = init.body;
    this.inWatchStream = init.inWatchStream ?? false;
  }
}

/** The resourceVersion asked for is older than the server keeps (HTTP 410 or a watch ERROR with code 410): relist. */
export function isGone(error: unknown): boolean {
  return error instanceof KubeApiError && (error.status === 410 || error.reason === 'Expired' || error.reason === 'Gone');
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchEvent<T> {
  type: WatchEventType;
  object: T;
}

export interface KubeList<T> {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  items: T[];
}

export interface SelectorOptions {
  labelSelector?: string;
  fieldSelector?: string;
}

export interface RequestOptions {
  /** Overrides the client's deadline for this one request. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ListOptions extends SelectorOptions, RequestOptions {
  /** Page size; the list is fetched page by page with continue tokens. */
  limit?: number;
  resourceVersion?: string;
}

export interface WatchOptions extends SelectorOptions {
  resourceVersion?: string;
  allowWatchBookmarks?: boolean;
  /** Asks the server to close the watch after this many seconds, so watches roll over. */
  timeoutSeconds?: number;
  /** Ends the watch. */
  signal?: AbortSignal;
  /** Deadline for the response headers; the stream itself has none here. */
  connectTimeoutMs?: number;
}

export interface KubeClientOptions {
  kubeConfig: KubeConfig;
  /** Deadline of every non-watch request (default 30 s). */
  requestTimeoutMs?: number;
  logger?: Logger;
}

/**
 * Splits a watch response body (one JSON object per line) into events. Pure: feed it decoded text as it
 * arrives; a line split across chunks is kept until its end arrives.
 */
export class WatchEventParser<T = unknown> {
  private pending = '';

  push(text: string): WatchEvent<T>[] {
    this.pending += text;
    const events: WatchEvent<T>[] = [];
    let newline = this.pending.indexOf('\n');
    while (newline >= 0) {
      const line = this.pending.slice(0, newline).trim();
      this.pending = this.pending.slice(newline + 1);
      if (line) events.push(parseWatchLine<T>(line));
      newline = this.pending.indexOf('\n');
    }
    return events;
  }

  /** The stream ended: a last line without a newline is still an event. */
  end(): WatchEvent<T>[] {
    const line = this.pending.trim();
    this.pending = '';
    return line ? [parseWatchLine<T>(line)] : [];
  }
}

function parseWatchLine<T>(line: string): WatchEvent<T> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    throw new SyntaxError(`watch stream: a line is not JSON: ${line.slice(0, 200)}`);
  }
  const event = parsed as { type?: unknown; object?: unknown };
  if (typeof event.type !== 'string' || !['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR'].includes(event.type) || typeof event.object !== 'object' || event.object === null) {
    throw new SyntaxError(`watch stream: not a watch event: ${line.slice(0, 200)}`);
  }
  return { type: event.type as WatchEventType, object: event.object as T };
}

type Query = Record<string, string | number | boolean | undefined>;

function withQuery(path: string, query: Query): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') params.set(k, String(v));
  const qs = params.toString();
  return qs ? `${path}${path.includes('?') ? '&' : '?'}${qs}` : path;
}

export class KubeClient {
  private readonly kc: KubeConfig;
  private readonly requestTimeoutMs: number;
  private readonly log: Logger;
  private agent: http.Agent | undefined;
  private agentMaterial: (Buffer | string | undefined)[] = [];

  constructor(options: KubeClientOptions) {
    this.kc = options.kubeConfig;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.log = options.logger ?? silentLogger;
  }

  /** GET one object; rejects with KubeApiError (404 included) or TimeoutError. */
  get<T>(path: string, options: RequestOptions = {}): Promise<T> {
    return this.request<T>('GET', path, {}, options);
  }

  /** One page of a list. */
  listPage<T>(path: string, options: ListOptions & { continueToken?: string } = {}): Promise<KubeList<T>> {
    const query: Query = {
      labelSelector: options.labelSelector,
      fieldSelector: options.fieldSelector,
      limit: options.limit,
      continue: options.continueToken,
      resourceVersion: options.continueToken ? undefined : options.resourceVersion,
    };
    return this.request<KubeList<T>>('GET', path, query, options);
  }

  /**
   * The whole list, page by page (default 500 a page), and the list's resourceVersion to watch from.
   * Each page has its own deadline. If a continue token expires mid-way (410), the list is fetched
   * again in one unpaginated request, as client-go's pager does.
   */
  async list<T>(path: string, options: ListOptions = {}): Promise<{ items: T[]; resourceVersion: string }> {
    const limit = options.limit ?? 500;
    const items: T[] = [];
    let continueToken: string | undefined;
    let resourceVersion = '';
    try {
      do {
        const page = await this.listPage<T>(path, { ...options, limit, continueToken });
        items.push(...page.items);
        resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
        continueToken = page.metadata?.continue || undefined;
      } while (continueToken);
    } catch (error) {
      if (!continueToken || !isGone(error)) throw error;
      this.log.info({ path }, 'list continue token expired; listing again in one request');
      const whole = await this.listPage<T>(path, { ...options, limit: undefined, continueToken: undefined });
      return { items: whole.items, resourceVersion: whole.metadata?.resourceVersion ?? '' };
    }
    return { items, resourceVersion };
  }

  /** Any request with a JSON answer, under a deadline. */
  async request<T>(method: string, path: string, query: Query = {}, options: RequestOptions & { body?: unknown; contentType?: string } = {}): Promise<T> {
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs;
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = options.signal ? AbortSignal.any([deadline, options.signal]) : deadline;
    const fullPath = withQuery(path, query);
    try {
      const res = await this.open(method, fullPath, signal, options.body, options.contentType);
      const text = await readBody(res);
      if (res.statusCode === undefined || res.statusCode < 200 || res.statusCode >= 300) {
        throw new KubeApiError({ status: res.statusCode ?? 0, method, path: fullPath, body: parseStatus(text) });
      }
      return JSON.parse(text) as T;
    } catch (error) {
      if (deadline.aborted && !(error instanceof KubeApiError)) {
        throw new TimeoutError(`${method} ${fullPath} did not finish within ${timeoutMs} ms`, { cause: error });
      }
      throw error;
    }
  }

  /**
   * Opens a watch and yields its events until the server ends it, `signal` aborts, or the consumer stops
   * iterating (which closes the connection). An ERROR event is thrown as a KubeApiError (410 → isGone).
   */
  async *watch<T extends KubernetesObject>(path: string, options: WatchOptions = {}): AsyncGenerator<WatchEvent<T>, void, undefined> {
    const fullPath = withQuery(path, {
      watch: 'true',
      resourceVersion: options.resourceVersion,
      allowWatchBookmarks: options.allowWatchBookmarks ?? true,
      timeoutSeconds: options.timeoutSeconds,
      labelSelector: options.labelSelector,
      fieldSelector: options.fieldSelector,
    });
    const connectTimeoutMs = options.connectTimeoutMs ?? this.requestTimeoutMs;
    // One controller for the whole stream: the connect deadline fires it only until headers arrive.
    const stream = new AbortController();
    const onOuterAbort = (): void => stream.abort(options.signal?.reason);
    if (options.signal?.aborted) return;
    options.signal?.addEventListener('abort', onOuterAbort, { once: true });
    const connectTimer = setTimeout(() => stream.abort(new TimeoutError(`GET ${fullPath}: no response headers within ${connectTimeoutMs} ms`)), connectTimeoutMs);
    connectTimer.unref();
    let res: IncomingMessage | undefined;
    try {
      try {
        res = await this.open('GET', fullPath, stream.signal);
      } catch (error) {
        if (stream.signal.reason instanceof TimeoutError) throw stream.signal.reason;
        throw error;
      } finally {
        clearTimeout(connectTimer);
      }
      if (res.statusCode !== 200) {
        const text = await readBody(res).catch(() => '');
        throw new KubeApiError({ status: res.statusCode ?? 0, method: 'GET', path: fullPath, body: parseStatus(text) });
      }
      yield* decodeWatchStream<T>(res as AsyncIterable<Buffer>, fullPath);
    } finally {
      options.signal?.removeEventListener('abort', onOuterAbort);
      res?.destroy();
      stream.abort();
    }
  }

  private async open(method: string, path: string, signal: AbortSignal, body?: unknown, contentType?: string): Promise<IncomingMessage> {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig: no current cluster');
    const server = new URL(cluster.server);
    // applyToHTTPSOptions also refreshes exec/OIDC tokens, so it runs per request.
    const opts: https.RequestOptions = { headers: {} };
    await this.kc.applyToHTTPSOptions(opts);
    const secure = server.protocol === 'https:';
    const agent = cluster.proxyUrl ? (opts.agent as http.Agent) : this.agentFor(secure, opts);
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const headers: Record<string, string | number> = { Accept: 'application/json', ...(opts.headers as Record<string, string>) };
    if (payload !== undefined) {
      headers['Content-Type'] = contentType ?? 'application/json';
      headers['Content-Length'] = Buffer.byteLength(payload);
    }
    const basePath = server.pathname.replace(/\/$/, '');
    const requestOptions: https.RequestOptions = {
      method,
      protocol: server.protocol,
      hostname: server.hostname.replace(/^\[|\]$/g, ''),
      port: server.port || (secure ? 443 : 80),
      path: `${basePath}${path}`,
      headers,
      agent,
      signal,
      ...(opts.auth ? { auth: opts.auth } : {}),
    };
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = (secure ? https : http).request(requestOptions, resolve);
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  /** One keep-alive agent, rebuilt only when the kubeconfig's TLS material changes (no agent per request: #2893). */
  private agentFor(secure: boolean, opts: https.RequestOptions): http.Agent {
    const material = [opts.ca as Buffer | undefined, opts.cert as Buffer | undefined, opts.key as Buffer | undefined, String(opts.rejectUnauthorized), opts.servername, String(secure)];
    const same = this.agent && material.every((m, i) => {
      const prev = this.agentMaterial[i];
      return Buffer.isBuffer(m) && Buffer.isBuffer(prev) ? m.equals(prev) : m === prev;
    });
    if (same && this.agent) return this.agent;
    this.agent?.destroy();
    this.agentMaterial = material;
    this.agent = secure
      ? new https.Agent({
          keepAlive: true,
          ca: opts.ca,
          cert: opts.cert,
          key: opts.key,
          ...(opts.rejectUnauthorized !== undefined ? { rejectUnauthorized: opts.rejectUnauthorized } : {}),
          ...(opts.servername ? { servername: opts.servername } : {}),
        })
      : new http.Agent({ keepAlive: true });
    return this.agent;
  }

  /** Closes idle keep-alive connections; open watches end when their signals abort. */
  close(): void {
    this.agent?.destroy();
    this.agent = undefined;
  }
}

/**
 * Turns a watch response body into events; an ERROR event is thrown as a KubeApiError carrying its code
 * (410 → isGone). `path` only labels errors.
 */
export async function* decodeWatchStream<T>(chunks: AsyncIterable<Buffer | string> | Iterable<Buffer | string>, path: string): AsyncGenerator<WatchEvent<T>, void, undefined> {
  const decoder = new StringDecoder('utf8');
  const parser = new WatchEventParser<T>();
  for await (const chunk of chunks) {
    for (const event of parser.push(typeof chunk === 'string' ? chunk : decoder.write(chunk))) yield checkEvent(event, path);
  }
  for (const event of parser.push(decoder.end())) yield checkEvent(event, path);
  for (const event of parser.end()) yield checkEvent(event, path);
}

function checkEvent<T>(event: WatchEvent<T>, path: string): WatchEvent<T> {
  if (event.type !== 'ERROR') return event;
  const status = event.object as KubeStatus;
  throw new KubeApiError({ status: typeof status.code === 'number' ? status.code : 500, method: 'GET', path, body: status, inWatchStream: true });
}

async function readBody(res: IncomingMessage): Promise<string> {
  const decoder = new StringDecoder('utf8');
  let text = '';
  for await (const chunk of res as AsyncIterable<Buffer>) text += decoder.write(chunk);
  return text + decoder.end();
}

function parseStatus(text: string): KubeStatus | undefined {
  try {
    const parsed = JSON.parse(text) as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as KubeStatus) : { message: String(parsed) };
  } catch {
    return text ? { message: text.slice(0, 500) } : undefined;
  }
}
