// Process and command helpers shared by the control plane and the worker node: detached daemons whose
// PIDs are recorded (and checked against PID reuse), polling, and kubectl at the cluster's version.
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

export const run = promisify(execFile);

export const log = (message: string) => process.stderr.write(`[cluster] ${message}\n`);

/**
 * Starts a daemon detached (so it outlives `cluster:up`), its output appended to `logFile`; returns its
 * PID, which is what stops it later. `netns` runs it in that network namespace (nsenter execs the binary,
 * so the PID and argv[0] are the binary's own).
 */
export function startDetached(logFile: string, binary: string, args: string[], netns?: string): number {
  const out = openSync(logFile, 'a');
  const [program, argv] = netns ? ['nsenter', [`--net=/run/netns/${netns}`, '--', binary, ...args]] : [binary, args];
  const child = spawn(program, argv, { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${binary}`);
  return child.pid;
}

/**
 * Runs `critical` holding an exclusive flock on `lockFile` (a `flock` child holds it, so the lock is
 * released if this process dies); other processes of this machine wait their turn.
 */
export async function withFileLock<T>(lockFile: string, critical: () => Promise<T>): Promise<T> {
  mkdirSync(dirname(lockFile), { recursive: true });
  const holder = spawn('flock', ['-x', lockFile, '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolveLocked, reject) => {
    holder.stdout.once('data', () => resolveLocked());
    holder.once('exit', (code) => reject(new Error(`flock ${lockFile} exited with ${code}`)));
  });
  try {
    return await critical();
  } finally {
    holder.stdin.end();
    await new Promise((r) => holder.once('exit', r));
  }
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** True when this PID is alive and still runs the binary we started (guards against PID reuse). */
export function isOurProcess(pid: number | undefined, binary: string, dir?: string): boolean {
  if (!pid) return false;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    // A process of ours was given this cluster's directory (its kubeconfig or data dir) in its arguments.
    return argv[0] === binary && (dir === undefined || argv.some((a) => a.includes(dir)));
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after `graceMs`, for each PID that `ours` still recognises. */
export async function stopPids(pids: number[], ours: (pid: number) => boolean, graceMs = 10_000): Promise<void> {
  const running = pids.filter(ours);
  for (const pid of running) signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && running.some(ours)) await new Promise((r) => setTimeout(r, 100));
  for (const pid of running) if (ours(pid)) signal(pid, 'SIGKILL');
}

/** A process that exits between the check and the signal (ESRCH) is what stopping wanted. */
function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

export async function kubectl(state: { bin: string; kubeconfig: string }, args: string[], input?: string): Promise<string> {
  const child = spawn(join(state.bin, 'kubectl'), ['--kubeconfig', state.kubeconfig, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  // A kubectl that exits before reading its input (most commands read none) closes the pipe: EPIPE on our
  // end is not a failure, its exit code says how it went. (It failed a CI run as an unhandled error.)
  child.stdin.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') stderr += `\nstdin: ${error.message}`;
  });
  child.stdin.end(input ?? '');
  // 'close', not 'exit': all of stdout has been read by then.
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${code}): ${stderr.trim()}`);
  return stdout;
}

/**
 * Applies the CRDs in `crdDir` and waits until EdgeDeployment's is Established. Right after a CRD is created
 * its status can still be empty, and `kubectl wait` then fails at once ("accessor error: <nil> … expected
 * []interface{}") instead of waiting, as it did in a CI run on a loaded machine: it is asked again, until the timeout.
 */
export async function installCrds(run: (args: string[]) => Promise<string>, crdDir: string, timeoutMs = 60_000): Promise<void> {
  await run(['apply', '--server-side', '--force-conflicts', '-f', crdDir]);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const seconds = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
    try {
      await run(['wait', '--for=condition=Established', `--timeout=${seconds}s`, 'crd/edgedeployments.iotedge-operator.io']);
      return;
    } catch (error) {
      if (!/accessor error/.test((error as Error).message) || Date.now() >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/** Runs a build script whose last stdout lines are its results; its progress goes to our stderr. */
export function runBuildScript(script: string, args: string[] = []): Promise<string[]> {
  return new Promise((resolveLines, reject) => {
    const child = spawn('bash', [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolveLines(out.trim().split('\n').filter(Boolean)) : reject(new Error(`${script} exited with ${code}`)),
    );
  });
}
