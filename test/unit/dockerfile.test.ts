// The Dockerfile, checked without a Docker engine: pinned bases, a non-root numeric user, production
// dependencies only, tini as PID 1, and a runtime layout (as the final stage assembles it) that really runs.
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from '@jest/globals';

const run = promisify(execFile);
const root = new URL('../..', import.meta.url).pathname;
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
const packageJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
const dockerignore = readFileSync(join(root, '.dockerignore'), 'utf8')
  .split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));

interface Instruction { keyword: string; args: string; line: number }
interface Stage { image: string; name: string | undefined; instructions: Instruction[] }

/** Instructions with line continuations joined and comments dropped, grouped into stages by FROM. */
function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  let pending = '';
  let startLine = 0;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) return;
    if (!pending) startLine = index + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const joined = `${pending}${line}`.trim();
    pending = '';
    const [keyword = '', ...rest] = joined.split(/\s+/);
    const instruction = { keyword: keyword.toUpperCase(), args: rest.join(' '), line: startLine };
    if (instruction.keyword === 'FROM') {
      const [image = '', as, name] = rest;
      stages.push({ image, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else {
      const stage = stages.at(-1);
      if (!stage) throw new Error(`Dockerfile line ${startLine}: ${instruction.keyword} before the first FROM`);
      stage.instructions.push(instruction);
    }
  });
  return stages;
}

const stages = parseDockerfile(dockerfile);
const finalStage = stages.at(-1)!;
const stageNames = new Set(stages.map((s) => s.name).filter(Boolean));
const instructions = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword);
const npmInstalls = (stage: Stage) => instructions(stage, 'RUN').filter((i) => /\bnpm\s+(ci|install|i)\b/.test(i.args));
const pinnedNode = /^pinned_node=(\S+)$/m.exec(readFileSync(join(root, 'scripts/with-node.sh'), 'utf8'))?.[1];

interface Copy { from: string | undefined; sources: string[]; destination: string }
function copies(stage: Stage): Copy[] {
  return instructions(stage, 'COPY').map((i) => {
    const words = i.args.split(/\s+/);
    const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
    const paths = words.filter((w) => !w.startsWith('--'));
    return { from, sources: paths.slice(0, -1), destination: paths.at(-1)! };
  });
}

describe('Dockerfile', () => {
  it('has a build stage and a separate runtime stage', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(npmInstalls(finalStage)).toEqual([]);
  });

  it('pins every base image to an exact version (or a digest), never latest or a floating major', () => {
    for (const { image } of stages) {
      if (stageNames.has(image)) continue;
      const [, tag = ''] = image.split('@')[0]!.split(':');
      const digest = /@sha256:[0-9a-f]{64}$/.test(image);
      expect({ image, pinned: digest || /^\d+\.\d+\.\d+(-[a-z0-9.]+)*$/.test(tag) }).toEqual({ image, pinned: true });
      expect(image).not.toMatch(/:latest\b|:lts\b|:current\b/);
    }
  });

  it('runs the Node.js LTS version the repository develops with (scripts/with-node.sh)', () => {
    const nodeImages = stages.map((s) => s.image).filter((i) => i.startsWith('node:'));
    expect(nodeImages.length).toBeGreaterThan(0);
    expect(pinnedNode).toMatch(/^\d+\.\d+\.\d+$/);
    for (const image of nodeImages) expect(image).toMatch(new RegExp(`^node:${pinnedNode!.replaceAll('.', '\\.')}-`));
    const major = Number(pinnedNode!.split('.')[0]);
    expect(major).toBeGreaterThanOrEqual(22);
    expect(major % 2).toBe(0); // even majors become LTS
  });

  it('runs as a non-root numeric user in the final stage', () => {
    const user = instructions(finalStage, 'USER').at(-1)?.args ?? '';
    expect(user).toMatch(/^\d+(:\d+)?$/);
    for (const id of user.split(':')) expect(Number(id)).toBeGreaterThan(0);
  });

  it('takes node_modules only from stages that install production dependencies', () => {
    const nodeModules = copies(finalStage).filter((c) => c.sources.some((s) => s.endsWith('node_modules')));
    expect(nodeModules).toHaveLength(1);
    for (const copy of nodeModules) {
      const source = stages.find((s) => s.name === copy.from);
      expect(source).toBeDefined();
      const installs = npmInstalls(source!);
      expect(installs.length).toBeGreaterThan(0);
      for (const install of installs) expect(install.args).toMatch(/--omit=dev\b/);
    }
  });

  it('compiles with npm run build in a build stage', () => {
    const builds = stages.filter((s) => instructions(s, 'RUN').some((i) => /\bnpm run build\b/.test(i.args)));
    expect(builds.map((s) => s.name)).not.toContain(finalStage.name);
    expect(builds).toHaveLength(1);
    expect(copies(finalStage).some((c) => c.from === builds[0]!.name && c.sources.includes('/app/dist'))).toBe(true);
  });

  it('starts node under tini (or dumb-init), which forwards signals and reaps children', () => {
    const entrypoint = instructions(finalStage, 'ENTRYPOINT').at(-1)?.args ?? '';
    const argv = JSON.parse(entrypoint) as string[]; // exec form: a shell form would swallow SIGTERM
    expect(argv[0]).toMatch(/\/(tini|dumb-init)$/);
    expect(argv.slice(1)).toEqual(['--', 'node', 'bin/iotedge-operator.js']);
    expect(JSON.parse(instructions(finalStage, 'CMD').at(-1)?.args ?? 'null')).toEqual(['run']);
    // tini comes from the build stage's Debian packages, not from the network at runtime.
    const tini = copies(finalStage).find((c) => c.sources.includes(argv[0]!));
    const tiniStage = stages.find((s) => s.name === tini?.from);
    expect(instructions(tiniStage!, 'RUN').some((i) => /apt-get install .*\btini\b/.test(i.args))).toBe(true);
  });

  it('copies from the build context only paths that exist and that .dockerignore lets through', () => {
    const contextSources = stages.flatMap((s) => copies(s).filter((c) => c.from === undefined).flatMap((c) => c.sources));
    expect(contextSources.length).toBeGreaterThan(0);
    for (const source of contextSources) {
      expect({ source, exists: existsSync(join(root, source)) }).toEqual({ source, exists: true });
      const topLevel = source.split('/')[0]!;
      expect({ source, ignored: dockerignore.includes(topLevel) || dockerignore.includes(source) }).toEqual({ source, ignored: false });
    }
  });

  it('keeps dependencies, VCS data, local cluster state and tests out of the build context', () => {
    for (const entry of ['node_modules', 'dist', '.git', '.cluster', 'test']) expect(dockerignore).toContain(entry);
  });
});

describe('the runtime layout the final stage assembles', () => {
  const image = mkdtempSync(join(tmpdir(), 'iotedge-operator-image-'));
  afterAll(() => rmSync(image, { recursive: true, force: true }));

  it('runs `iotedge-operator run` from compiled JavaScript, without the TypeScript sources', async () => {
    // The build stage's step, into the layout's dist/.
    await run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', join(image, 'dist')]);
    for (const copy of copies(finalStage)) {
      if (copy.from === undefined) {
        for (const source of copy.sources) cpSync(join(root, source), join(image, copy.destination), { recursive: true });
      } else if (copy.sources.includes('/app/node_modules')) {
        symlinkSync(join(root, 'node_modules'), join(image, 'node_modules'));
      }
    }
    expect(existsSync(join(image, 'src'))).toBe(false);
    const entry = JSON.parse(instructions(finalStage, 'ENTRYPOINT').at(-1)!.args) as string[];
    const script = entry[entry.indexOf('node') + 1]!;
    const version = await run(process.execPath, [script, '--version'], { cwd: image });
    expect(version.stdout.trim()).toBe(packageJson.version);
    const help = await run(process.execPath, [script, 'run', '--help'], { cwd: image });
    expect(help.stdout).toContain('IOTEDGE_OPERATOR_HEALTH_PROBE_BIND_ADDRESS');
    // Node strips no types under node_modules, and the image has no sources: every relative import in dist/
    // must have been rewritten from .ts to .js.
    const emitted = readdirSync(join(image, 'dist'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js'));
    expect(emitted).toContain(join('cli', 'main.js'));
    const tsImports = emitted.flatMap((file) =>
      [...readFileSync(join(image, 'dist', file), 'utf8').matchAll(/(?:from |import\()["'](\.{1,2}\/[^"']+\.ts)["']/g)].map((m) => `${file}: ${m[1]}`));
    expect(tsImports).toEqual([]);
  });
});
