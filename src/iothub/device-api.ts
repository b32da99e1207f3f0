// The device-scoped part of IoT Hub's REST API: with the device's own SAS (sr = <hub>/devices/<id>)
// an edge device reads and manages the identities of its own modules, as the IoT Edge security daemon
// does. azure-iothub only signs with policy keys, so this is a small client of its own, with a
// deadline on every call.
import { request } from 'node:https';
import { rootCertificates } from 'node:tls';
import { signSas } from '../runtime/sas.ts';

export interface ModuleIdentity {
  moduleId: string;
  deviceId: string;
  managedBy?: string;
  etag?: string;
  authentication?: { type?: string; symmetricKey?: { primaryKey?: string | null; secondaryKey?: string | null } };
}

export class HubRestError extends Error {
  override name = 'HubRestError';
  readonly status: number;
  /** IoT Hub's error code (e.g. ModuleNotFound, IotHubUnauthorizedAccess), when the body names one. */
  readonly code: string | undefined;
  constructor(status: number, code: string | undefined, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export interface DeviceApiOptions {
  hostName: string;
  deviceId: string;
  /** The device's base64 key; signs a fresh token per request. */
  deviceKey: string;
  /** Extra trusted CA (PEM), added to Node's roots: a private hub or the emulator. */
  caCertPem?: string;
  port?: number;
  timeoutMs?: number;
  apiVersion?: string;
}

export class DeviceApi {
  private readonly o: DeviceApiOptions;
  constructor(options: DeviceApiOptions) {
    this.o = options;
  }

  private modulePath(moduleId?: string): string {
    const base = `/devices/${encodeURIComponent(this.o.deviceId)}/modules`;
    return moduleId === undefined ? base : `${base}/${encodeURIComponent(moduleId)}`;
  }

  async getModule(moduleId: string): Promise<ModuleIdentity | undefined> {
    try {
      return await this.call<ModuleIdentity>('GET', this.modulePath(moduleId));
    } catch (error) {
      if (error instanceof HubRestError && error.status === 404) return undefined;
      throw error;
    }
  }

  listModules(): Promise<ModuleIdentity[]> {
    return this.call<ModuleIdentity[]>('GET', this.modulePath());
  }

  /** Creates the module (no If-Match), or with `ifMatch` replaces it; empty keys make the hub generate them. */
  putModule(moduleId: string, body: { managedBy?: string; keys?: { primaryKey: string; secondaryKey: string } }, ifMatch?: string): Promise<ModuleIdentity> {
    return this.call<ModuleIdentity>('PUT', this.modulePath(moduleId), {
      moduleId,
      deviceId: this.o.deviceId,
      ...(body.managedBy ? { managedBy: body.managedBy } : {}),
      authentication: { type: 'sas', symmetricKey: body.keys ?? { primaryKey: null, secondaryKey: null } },
    }, ifMatch);
  }

  async deleteModule(moduleId: string): Promise<void> {
    try {
      await this.call('DELETE', this.modulePath(moduleId), undefined, '*');
    } catch (error) {
      if (error instanceof HubRestError && error.status === 404) return;
      throw error;
    }
  }

  private call<T>(method: string, path: string, body?: unknown, ifMatch?: string): Promise<T> {
    const { hostName, deviceId, deviceKey } = this.o;
    const token = signSas({ resourceUri: `${hostName}/devices/${deviceId}`, key: deviceKey, expiry: Math.floor(Date.now() / 1000) + 3600 });
    const text = body === undefined ? undefined : JSON.stringify(body);
    const timeoutMs = this.o.timeoutMs ?? 30_000;
    return new Promise<T>((resolve, reject) => {
      const req = request({
        host: hostName,
        port: this.o.port ?? 443,
        method,
        path: `${path}?api-version=${this.o.apiVersion ?? '2021-04-12'}`,
        ...(this.o.caCertPem ? { ca: [...rootCertificates, this.o.caCertPem] } : {}),
        headers: {
          authorization: token,
          'user-agent': 'iotedge-operator',
          ...(text === undefined ? {} : { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) }),
          ...(ifMatch === undefined ? {} : { 'if-match': ifMatch === '*' ? '*' : `"${ifMatch.replace(/^"|"$/g, '')}"` }),
        },
        signal: AbortSignal.timeout(timeoutMs),
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          let parsed: unknown;
          try {
            parsed = raw.trim() === '' ? undefined : JSON.parse(raw);
          } catch {
            parsed = undefined;
          }
          if (status >= 200 && status < 300) return resolve(parsed as T);
          // {"Message":"ErrorCode:<Code>;<text>"}: the hub's error format.
          const message = typeof (parsed as { Message?: unknown })?.Message === 'string' ? (parsed as { Message: string }).Message : raw.slice(0, 200);
          const code = /^ErrorCode:([^;]+);/.exec(message)?.[1];
          const text = code ? message.slice(`ErrorCode:${code};`.length) : message;
          reject(new HubRestError(status, code, `${method} ${path}: ${status}${code ? ` ${code}` : ''}: ${text}`));
        });
      });
      req.on('error', (error: Error) => reject(error.name === 'AbortError' || error.name === 'TimeoutError'
        ? new HubRestError(0, 'Timeout', `${method} ${path}: no answer within ${timeoutMs} ms`)
        : error));
      req.end(text);
    });
  }
}
