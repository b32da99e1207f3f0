// Jobs (/jobs/v2), as azure-iothub's JobClient uses them: a scheduled twin update or device method over the
// devices a query condition selects, run once at its start time. A job is `queued` until it starts, `running`
// while its devices are processed, then `completed` (even when some devices failed: deviceJobStatistics says
// which), `cancelled`, or `failed` when it outlives maxExecutionTimeInSeconds. Jobs live in memory only.
// queryCondition is IoT Hub's WHERE grammar over device twins (src/emulator/query).
import { HubError } from './errors.ts';
import { isJsonObject } from './twin.ts';
import type { Json, JsonObject } from './twin.ts';

export type JobType = 'scheduleUpdateTwin' | 'scheduleDeviceMethod';
export type JobStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
export type DeviceJobStatus = 'pending' | 'running' | 'completed' | 'failed' | 'canceled';

/** The direct method a job calls on each device. */
export interface JobMethod {
  methodName: string;
  payload: Json;
  responseTimeoutInSeconds: number;
  connectTimeoutInSeconds: number;
}

/** What a job did on one device (the `devices.jobs` record). */
export interface DeviceJobRecord {
  deviceId: string;
  jobId: string;
  jobType: JobType;
  status: DeviceJobStatus;
  startTimeUtc: string;
  endTimeUtc: string | undefined;
  createdDateTimeUtc: string;
  lastUpdatedDateTimeUtc: string;
  outcome: { deviceMethodResponse: { status: number; payload: unknown } | null };
  error: { code: string; description: string } | undefined;
}

interface Job {
  jobId: string;
  type: JobType;
  queryCondition: string;
  createdTime: string;
  startTime: string;
  endTime: string | undefined;
  maxExecutionTimeInSeconds: number;
  cloudToDeviceMethod: JobMethod | undefined;
  updateTwin: JsonObject | undefined;
  status: JobStatus;
  failureReason: string | undefined;
  statusMessage: string | undefined;
  devices: DeviceJobRecord[];
  timers: NodeJS.Timeout[];
}

/** What jobs need from the hub. */
export interface JobHost {
  /** Compiles a WHERE condition over device twins; throws HubError ArgumentInvalid on bad syntax. */
  compileCondition: (text: string) => (twin: JsonObject) => boolean;
  /** Every device twin, as GET /twins/{id} returns it. */
  deviceTwins: () => JsonObject[];
  /** A service twin PATCH (tags and desired properties) with an optional If-Match etag. */
  updateTwin: (deviceId: string, patch: JsonObject, ifMatch: string | undefined) => void;
  invokeMethod: (deviceId: string, method: JobMethod) => Promise<{ status: number; payload: unknown }>;
  log: (message: string, fields?: Record<string, unknown>) => void;
}

/**
 * How long a method job waits for a device to connect and subscribe when the job names no connectTimeoutInSeconds:
 * a device that has just connected (the usual test) gets its subscription in; an offline device fails soon rather
 * than holding the job for its whole execution window.
 */
export const defaultJobConnectTimeoutSeconds = 30;
const defaultMaxExecutionSeconds = 3600;
const finishedJobLimit = 1000;
const maxTimer = 2 ** 31 - 1;

function requiredString(body: JsonObject, name: string): string {
  const value = body[name];
  if (typeof value !== 'string' || value.trim() === '') throw new HubError('ArgumentInvalid', `${name} must be a non-empty string`);
  return value;
}

function seconds(value: Json | undefined, fallback: number, name: string): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new HubError('ArgumentInvalid', `${name} must be a non-negative whole number of seconds`);
  return value;
}

function parseMethod(value: Json | undefined): JobMethod {
  if (!isJsonObject(value) || typeof value.methodName !== 'string' || !/^[^/?#\s]{1,128}$/.test(value.methodName)) {
    throw new HubError('ArgumentInvalid', 'cloudToDeviceMethod needs a methodName (1–128 characters, no / ? # or spaces)');
  }
  return {
    methodName: value.methodName,
    payload: value.payload ?? null,
    responseTimeoutInSeconds: seconds(value.responseTimeoutInSeconds, 30, 'responseTimeoutInSeconds'),
    connectTimeoutInSeconds: seconds(value.connectTimeoutInSeconds, defaultJobConnectTimeoutSeconds, 'connectTimeoutInSeconds'),
  };
}

/** A job's twin patch as the registry takes it: IoT Hub ignores a job patch's etag '*', deviceId and (empty) reported section. */
function parseTwinPatch(value: Json | undefined): { patch: JsonObject; ifMatch: string | undefined } {
  if (!isJsonObject(value)) throw new HubError('ArgumentInvalid', 'updateTwin must be a twin object (tags, properties.desired)');
  const { etag, deviceId: _deviceId, properties, ...rest } = value;
  if (properties !== undefined && properties !== null && !isJsonObject(properties)) throw new HubError('ArgumentInvalid', 'updateTwin.properties must be an object');
  const { reported, ...desiredOnly } = isJsonObject(properties) ? properties : {};
  if (isJsonObject(reported) && Object.keys(reported).length > 0) throw new HubError('ArgumentInvalid', 'a job cannot write reported properties; they belong to the device');
  const patch: JsonObject = { ...rest, ...(isJsonObject(properties) ? { properties: desiredOnly } : {}) };
  return { patch, ifMatch: typeof etag === 'string' && etag !== '*' ? etag : undefined };
}

function startTimeOf(value: Json | undefined): Date {
  if (value === undefined || value === null) return new Date();
  const date = typeof value === 'string' ? new Date(value) : undefined;
  if (!date || Number.isNaN(date.getTime())) throw new HubError('ArgumentInvalid', 'startTime must be an ISO 8601 date');
  return date;
}

export class JobScheduler {
  private readonly host: JobHost;
  private readonly jobs = new Map<string, Job>();
  private stopped = false;

  constructor(host: JobHost) {
    this.host = host;
  }

  /** PUT /jobs/v2/{id}: validates, schedules, and answers with the job (status `queued`). */
  create(jobId: string, body: unknown): JsonObject {
    if (!isJsonObject(body)) throw new HubError('ArgumentInvalid', 'the job body must be a JSON object');
    if (body.jobId !== undefined && body.jobId !== jobId) throw new HubError('ArgumentInvalid', `the body's jobId (${String(body.jobId)}) is not the path's (${jobId})`);
    if (this.jobs.has(jobId)) throw new HubError('JobAlreadyExists', `A job with id ${jobId} already exists.`);
    const type = body.type;
    if (type !== 'scheduleUpdateTwin' && type !== 'scheduleDeviceMethod') {
      throw new HubError('ArgumentInvalid', `type must be scheduleUpdateTwin or scheduleDeviceMethod (the emulator runs no import/export jobs), not ${String(type)}`);
    }
    const queryCondition = requiredString(body, 'queryCondition');
    this.host.compileCondition(queryCondition);
    const cloudToDeviceMethod = type === 'scheduleDeviceMethod' ? parseMethod(body.cloudToDeviceMethod) : undefined;
    if (type === 'scheduleUpdateTwin') parseTwinPatch(body.updateTwin);
    const updateTwin = type === 'scheduleUpdateTwin' ? structuredClone(body.updateTwin as JsonObject) : undefined;
    const start = startTimeOf(body.startTime);
    const job: Job = {
      jobId,
      type,
      queryCondition,
      createdTime: new Date().toISOString(),
      startTime: start.toISOString(),
      endTime: undefined,
      maxExecutionTimeInSeconds: seconds(body.maxExecutionTimeInSeconds, defaultMaxExecutionSeconds, 'maxExecutionTimeInSeconds') || defaultMaxExecutionSeconds,
      cloudToDeviceMethod,
      updateTwin,
      status: 'queued',
      failureReason: undefined,
      statusMessage: undefined,
      devices: [],
      timers: [],
    };
    this.jobs.set(jobId, job);
    this.forgetOldJobs();
    this.after(job, start.getTime() - Date.now(), () => void this.run(job));
    return this.json(job);
  }

  /** GET /jobs/v2/{id}. */
  get(jobId: string): JsonObject {
    return this.json(this.find(jobId));
  }

  /** POST /jobs/v2/{id}/cancel: a queued or running job stops; devices not yet reached are left alone. */
  cancel(jobId: string): JsonObject {
    const job = this.find(jobId);
    if (job.status === 'queued' || job.status === 'running') {
      this.settle(job, 'cancelled');
      for (const device of job.devices) if (device.status === 'pending') this.finishDevice(device, 'canceled');
    }
    return this.json(job);
  }

  /** GET /jobs/v2/query: every job (newest first) of the given type and status, if given. */
  query(jobType: string | undefined, jobStatus: string | undefined): JsonObject[] {
    return [...this.jobs.values()]
      .filter((j) => (jobType === undefined || j.type === jobType) && (jobStatus === undefined || j.status === jobStatus))
      .reverse()
      .map((j) => this.json(j));
  }

  /** Every job's per-device records, as `SELECT * FROM devices.jobs` reads them. */
  deviceJobs(): JsonObject[] {
    return [...this.jobs.values()].flatMap((j) => j.devices.map((d) => JSON.parse(JSON.stringify(d)) as JsonObject));
  }

  stop(): void {
    this.stopped = true;
    for (const job of this.jobs.values()) for (const timer of job.timers) clearTimeout(timer);
  }

  private find(jobId: string): Job {
    const job = this.jobs.get(jobId);
    if (!job) throw new HubError('JobNotFound', `Job ${jobId} not found.`);
    return job;
  }

  private after(job: Job, ms: number, action: () => void): void {
    const timer = setTimeout(action, Math.max(0, Math.min(ms, maxTimer)));
    timer.unref();
    job.timers.push(timer);
  }

  /** Selects the devices when the job starts (as IoT Hub does) and processes each one. */
  private async run(job: Job): Promise<void> {
    if (this.stopped || job.status !== 'queued') return;
    let matches: (twin: JsonObject) => boolean;
    try {
      matches = this.host.compileCondition(job.queryCondition);
    } catch (error) {
      this.settle(job, 'failed', error instanceof Error ? error.message : String(error));
      return;
    }
    job.status = 'running';
    const now = new Date().toISOString();
    job.devices = this.host.deviceTwins().filter((t) => matches(t)).map((t) => ({
      deviceId: String(t.deviceId),
      jobId: job.jobId,
      jobType: job.type,
      status: 'pending',
      startTimeUtc: now,
      endTimeUtc: undefined,
      createdDateTimeUtc: job.createdTime,
      lastUpdatedDateTimeUtc: now,
      outcome: { deviceMethodResponse: null },
      error: undefined,
    }));
    this.after(job, job.maxExecutionTimeInSeconds * 1000, () => {
      if (job.status === 'running') this.settle(job, 'failed', `The job did not finish within ${job.maxExecutionTimeInSeconds} seconds.`);
    });
    this.host.log('job started', { jobId: job.jobId, type: job.type, devices: job.devices.length });
    await Promise.all(job.devices.map((device) => this.runOnDevice(job, device)));
    if (job.status === 'running') this.settle(job, 'completed');
  }

  private async runOnDevice(job: Job, device: DeviceJobRecord): Promise<void> {
    if (job.status !== 'running') return;
    device.status = 'running';
    try {
      if (job.updateTwin) {
        const { patch, ifMatch } = parseTwinPatch(job.updateTwin);
        this.host.updateTwin(device.deviceId, patch, ifMatch);
      } else if (job.cloudToDeviceMethod) {
        const response = await this.host.invokeMethod(device.deviceId, job.cloudToDeviceMethod);
        device.outcome = { deviceMethodResponse: response };
      }
      if (device.status === 'running') this.finishDevice(device, 'completed');
    } catch (error) {
      const code = error instanceof HubError ? error.code : 'ServerError';
      device.error = { code, description: error instanceof Error ? error.message : String(error) };
      if (device.status === 'running') this.finishDevice(device, 'failed');
    }
  }

  private finishDevice(device: DeviceJobRecord, status: DeviceJobStatus): void {
    device.status = status;
    device.endTimeUtc = new Date().toISOString();
    device.lastUpdatedDateTimeUtc = device.endTimeUtc;
  }

  private settle(job: Job, status: 'completed' | 'failed' | 'cancelled', failureReason?: string): void {
    job.status = status;
    job.endTime = new Date().toISOString();
    if (failureReason !== undefined) job.failureReason = failureReason;
    for (const timer of job.timers) clearTimeout(timer);
    job.timers = [];
    this.host.log('job finished', { jobId: job.jobId, status, ...(failureReason ? { failureReason } : {}) });
  }

  private forgetOldJobs(): void {
    for (const [jobId, job] of this.jobs) {
      if (this.jobs.size <= finishedJobLimit) return;
      if (job.status !== 'queued' && job.status !== 'running') this.jobs.delete(jobId);
    }
  }

  /** The job as IoT Hub's JobResponse. */
  private json(job: Job): JsonObject {
    const count = (status: DeviceJobStatus) => job.devices.filter((d) => d.status === status).length;
    return {
      jobId: job.jobId,
      queryCondition: job.queryCondition,
      createdTime: job.createdTime,
      startTime: job.startTime,
      ...(job.endTime === undefined ? {} : { endTime: job.endTime }),
      maxExecutionTimeInSeconds: job.maxExecutionTimeInSeconds,
      type: job.type,
      ...(job.cloudToDeviceMethod ? { cloudToDeviceMethod: { ...job.cloudToDeviceMethod } } : {}),
      ...(job.updateTwin ? { updateTwin: structuredClone(job.updateTwin) } : {}),
      status: job.status,
      ...(job.failureReason === undefined ? {} : { failureReason: job.failureReason }),
      ...(job.statusMessage === undefined ? {} : { statusMessage: job.statusMessage }),
      deviceJobStatistics: {
        deviceCount: job.devices.length,
        failedCount: count('failed'),
        succeededCount: count('completed'),
        runningCount: count('running'),
        pendingCount: count('pending'),
      },
    };
  }
}

/** One REST answer for /jobs/v2/…: status, body and extra headers (x-ms-continuation when more pages follow). */
export interface JobAnswer {
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

const defaultPageSize = 100;

function page(items: JsonObject[], maxItemCount: string | undefined, continuation: string | undefined): JobAnswer {
  const size = maxItemCount === undefined || maxItemCount.trim() === '' ? defaultPageSize : Number(maxItemCount);
  if (!Number.isInteger(size) || size < 1) throw new HubError('ArgumentInvalid', `x-ms-max-item-count "${String(maxItemCount)}" is not a positive integer`);
  const offset = continuation ? Number(Buffer.from(continuation, 'base64url').toString('utf8')) : 0;
  if (!Number.isInteger(offset) || offset < 0) throw new HubError('ArgumentInvalid', 'x-ms-continuation is not one this hub gave out');
  const next = offset + size;
  return {
    status: 200,
    body: items.slice(offset, next),
    headers: next < items.length ? { 'x-ms-continuation': Buffer.from(String(next)).toString('base64url') } : {},
  };
}

/**
 * Serves /jobs/v2/{id} (PUT, GET), /jobs/v2/{id}/cancel (POST) and /jobs/v2/query (GET, with jobType, jobStatus and
 * x-ms-max-item-count / x-ms-continuation paging). `rest` is the path after /jobs/v2.
 */
export async function serveJobRequest(
  jobs: JobScheduler,
  method: string,
  rest: string[],
  query: URLSearchParams,
  paging: { maxItemCount: string | undefined; continuation: string | undefined },
  readBody: () => Promise<unknown>,
): Promise<JobAnswer> {
  const [jobId, action] = rest;
  const ok = (body: unknown): JobAnswer => ({ status: 200, body, headers: {} });
  if (jobId === 'query' && action === undefined && method === 'GET') {
    return page(jobs.query(query.get('jobType') ?? undefined, query.get('jobStatus') ?? undefined), paging.maxItemCount, paging.continuation);
  }
  if (jobId !== undefined && action === undefined && method === 'PUT') return ok(jobs.create(jobId, await readBody()));
  if (jobId !== undefined && action === undefined && method === 'GET') return ok(jobs.get(jobId));
  if (jobId !== undefined && action === 'cancel' && rest.length === 2 && method === 'POST') return ok(jobs.cancel(jobId));
  throw new HubError('NotFound', `No ${method} /jobs/v2/${rest.join('/')} on IoT Hub.`);
}
