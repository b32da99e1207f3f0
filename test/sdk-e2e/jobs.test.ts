// Job scenarios of the SDK's job client suite: a scheduled twin update and a scheduled device method,
// each targeting a device by a query condition and run to completion, and each scheduled an hour ahead
// and cancelled. The device answers the method over MQTT.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { JobClient as JobClientType } from 'azure-iothub';
import { closeQuietly, DeviceClient, JobClient, methodsSubscribed, startTrustedHub, transports, uniqueId } from './support.ts';
import type { DeviceClientType, HarnessHub } from './support.ts';

const pollMs = 500;

describe('job client', () => {
  let h: HarnessHub;
  let jobs: JobClientType;
  let deviceId: string;
  let deviceConnectionString: string;
  let client: DeviceClientType | undefined;

  beforeAll(async () => {
    h = await startTrustedHub();
    jobs = JobClient.fromConnectionString(h.connectionString);
    deviceId = uniqueId('jobs');
    const created = (await h.registry.create({ deviceId } as never)).responseBody;
    deviceConnectionString = `HostName=${h.host};DeviceId=${deviceId};SharedAccessKey=${created.authentication?.symmetricKey?.primaryKey}`;
  });

  afterAll(async () => {
    await closeQuietly(client);
    await h?.hub.stop();
  });

  /** Polls the job until it reaches `status`; a job that fails or is cancelled on the way fails the scenario. */
  async function jobReaches(jobId: string, status: string): Promise<Record<string, unknown>> {
    for (;;) {
      const job = (await jobs.getJob(jobId)).jobStatus as Record<string, unknown>;
      if (job.status === status) return job;
      if (job.status === 'failed' || job.status === 'cancelled' || job.status === 'completed') throw new Error(`job ${jobId} is ${String(job.status)}, waiting for ${status}`);
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  const condition = () => `deviceId = '${deviceId}'`;

  it('a twin update job for a query condition completes and the tag is set', async () => {
    const jobId = uniqueId('job');
    const patch = { etag: '*', tags: { site: 'north' }, properties: { desired: {}, reported: {} } };
    await jobs.scheduleTwinUpdate(jobId, condition(), patch, new Date(), 120);
    await jobReaches(jobId, 'completed');
    expect((await h.registry.getTwin(deviceId)).responseBody.tags.site).toBe('north');
  });

  it('a twin update job scheduled an hour ahead is queued and can be cancelled', async () => {
    const jobId = uniqueId('job');
    const patch = { etag: '*', tags: {}, properties: { desired: {}, reported: {} } };
    const { jobStatus: result } = await jobs.scheduleTwinUpdate(jobId, condition(), patch, new Date(Date.now() + 3_600_000), 120);
    expect(result).toMatchObject({ jobId, status: 'queued' });
    await jobs.cancelJob(jobId);
    await jobReaches(jobId, 'cancelled');
  });

  it('a device method job for a query condition completes after the device answered', async () => {
    client = DeviceClient.fromConnectionString(deviceConnectionString, transports.Mqtt);
    await client.open();
    const answered = new Promise<void>((resolve) => {
      client!.onDeviceMethod('calibrate', (_request, response) => {
        response.send(200, () => resolve());
      });
    });
    await methodsSubscribed(h.hub, deviceId);
    const jobId = uniqueId('job');
    await jobs.scheduleDeviceMethod(jobId, condition(), { methodName: 'calibrate', payload: null, responseTimeoutInSeconds: 30 }, new Date(), 120);
    await jobReaches(jobId, 'completed');
    await answered;
  });

  it('a device method job scheduled an hour ahead is queued and can be cancelled', async () => {
    const jobId = uniqueId('job');
    const { jobStatus: result } = await jobs.scheduleDeviceMethod(jobId, condition(), { methodName: 'calibrate', payload: null, responseTimeoutInSeconds: 30 }, new Date(Date.now() + 3_600_000), 120);
    expect(result).toMatchObject({ jobId, status: 'queued' });
    await jobs.cancelJob(jobId);
    await jobReaches(jobId, 'cancelled');
  });
});
