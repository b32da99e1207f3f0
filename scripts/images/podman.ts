// podman with a private store under the project's cache, so image builds neither need nor touch the
// machine's own podman/docker state, and `rm -rf ~/.cache/iotedge-operator/podman` resets them.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { withFileLock } from '../cluster/processes.ts';
import { cacheRoot } from './cache.ts';

export const podmanRoot = join(cacheRoot, 'podman');

/** Store and runtime flags every podman call gets: private store, cgroupfs, no systemd/journald needed. */
const globalFlags = [
  // The same store as scripts/cluster/build-worker-images.sh: podman refuses a store opened with other paths.
  '--root', join(podmanRoot, 'root'),
  '--runroot', join(podmanRoot, 'runroot'),
  '--cgroup-manager', 'cgroupfs',
  '--events-backend', 'file',
];

/**
 * Serialises everything from building the project's images to importing them into a worker, across the
 * processes of this machine. Every worktree builds the same tags (localhost/iotedge-operator:dev, …)
 * from its own sources, so without it one run could save or import another's image under its tag,
 * or delete the archive another is about to import.
 */
export const withProjectImagesLock = <T>(critical: () => Promise<T>): Promise<T> => withFileLock(join(podmanRoot, '.project-images.lock'), critical);

export interface RunResult { stdout: string; stderr: string }

/** Runs a program; rejects with its stderr tail. With `echo`, its output streams to our stderr as it comes. */
export function runProgram(program: string, args: string[], options: { echo?: boolean; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      if (options.echo) process.stderr.write(c);
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      if (options.echo) process.stderr.write(c);
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${program} ${args.slice(0, 3).join(' ')}… exited with ${code}: ${stderr.trim().split('\n').slice(-8).join('\n')}`));
    });
  });
}

export async function podman(args: string[], options: { echo?: boolean; cwd?: string } = {}): Promise<string> {
  return (await runProgram('podman', [...globalFlags, ...args], options)).stdout;
}

/** The image's ID in the private store, or undefined when it is not there. */
export async function imageId(reference: string): Promise<string | undefined> {
  try {
    return (await podman(['image', 'inspect', '--format', '{{.Id}}', reference])).trim() || undefined;
  } catch {
    return undefined;
  }
}

export async function imageSize(reference: string): Promise<number> {
  return Number((await podman(['image', 'inspect', '--format', '{{.Size}}', reference])).trim());
}

/** Installs the Debian packages image builds need when a program is missing (we run as root on Debian). */
export async function ensureDebianPackages(programs: Record<string, string>): Promise<void> {
  const paths = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin']);
  const missing = Object.entries(programs).filter(([program]) => !paths.some((p) => existsSync(join(p, program)))).map(([, pkg]) => pkg);
  if (missing.length === 0) return;
  process.stderr.write(`[images] installing Debian packages: ${missing.join(' ')}\n`);
  await runProgram('apt-get', ['update', '-qq'], { echo: true });
  await runProgram('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'install', '-y', '-qq', ...missing], { echo: true });
}
