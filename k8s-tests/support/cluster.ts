/**
 * A real Kubernetes control plane for tests: etcd + kube-apiserver started by
 * scripts/control-plane.sh in a run dir of their own, driven with the real kubectl.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(HERE, '..', '..');

/**
 * The chart requires keys for the APIs' bearer tokens (auth.enabled): the tests give it a JWKS
 * URL, which nothing fetches (no pod runs here).
 */
export const AUTH_VALUES = ['--set', 'auth.jwksUrl=https://idp.example.test/.well-known/jwks.json'];

/**
 * The third-party CRDs (Strimzi, Prometheus Operator) the tests install: from ORDERSAGA_SHARED_DIR,
 * else the shared/ folder beside the checkout, else beside the repository it was cloned from
 * (a clone made elsewhere, e.g. `git clone <repo> /tmp/x`).
 */
export function sharedCrds(): string {
  const candidates = process.env.ORDERSAGA_SHARED_DIR
    ? [process.env.ORDERSAGA_SHARED_DIR]
    : [join(ROOT, '..', 'shared'), ...originDir().map((origin) => join(origin, '..', 'shared'))];
  const dir = candidates.map((c) => join(c, 'crds')).find((c) => existsSync(c));
  if (!dir)
    throw new Error(`no crds/ in ${candidates.join(' or ')}: set ORDERSAGA_SHARED_DIR to the folder holding crds/`);
  return dir;
}

/** The repository this checkout was cloned from, when it is a folder on this machine. */
function originDir(): string[] {
  try {
    const url = execFileSync('git', ['-C', ROOT, 'remote', 'get-url', 'origin'], { encoding: 'utf8' }).trim();
    return url.startsWith('/') ? [url] : [];
  } catch {
    return [];
  }
}
const SCRIPTS = join(HERE, '..', 'scripts');

/** Paths of the tools, as versions.env gives them. */
export async function tool(name: 'KUBECTL_BIN' | 'HELM_BIN' | 'SKAFFOLD_BIN'): Promise<string> {
  const { stdout } = await run('bash', ['-c', `source "${SCRIPTS}/versions.env" && printf %s "$${name}"`]);
  return stdout;
}

const RUN_DIR_PREFIX = 'ordersaga-k8s-test-';
const OWNER_FILE = 'test-run.pid';

function ownerAlive(runDir: string): boolean {
  try {
    process.kill(Number(readFileSync(join(runDir, OWNER_FILE), 'utf8')), 0);
    return true;
  } catch {
    return false;
  }
}

function stopSync(runDir: string): void {
  try {
    execFileSync('bash', [join(SCRIPTS, 'control-plane.sh'), 'stop'], {
      env: { ...process.env, ORDERSAGA_K8S_RUN_DIR: runDir },
      stdio: 'ignore',
    });
  } catch {
    // Nothing left to stop.
  }
}

export class TestCluster {
  private constructor(
    readonly runDir: string,
    readonly kubeconfig: string,
    readonly kubectlPath: string,
    readonly helmPath: string,
  ) {}

  static async start(): Promise<TestCluster> {
    // A test run that was killed left its control plane behind: stop it (the script finds its
    // processes from the run dir) before starting this run's. Runs still alive are left alone.
    for (const stale of readdirSync(tmpdir()).filter((d) => d.startsWith(RUN_DIR_PREFIX))) {
      const dir = join(tmpdir(), stale);
      if (ownerAlive(dir)) continue;
      stopSync(dir);
      rmSync(dir, { recursive: true, force: true });
    }
    const runDir = mkdtempSync(join(tmpdir(), RUN_DIR_PREFIX));
    // And if this run dies, its control plane goes with it.
    process.once('exit', () => stopSync(runDir));
    const { stdout } = await run('bash', [join(SCRIPTS, 'control-plane.sh'), 'start'], {
      env: { ...process.env, ORDERSAGA_K8S_RUN_DIR: runDir },
    });
    writeFileSync(join(runDir, OWNER_FILE), String(process.pid));
    const line = stdout.split('\n').find((l) => l.startsWith('KUBECONFIG='));
    if (!line) throw new Error(`control-plane.sh start printed no KUBECONFIG line: ${stdout}`);
    return new TestCluster(
      runDir,
      line.slice('KUBECONFIG='.length).trim(),
      await tool('KUBECTL_BIN'),
      await tool('HELM_BIN'),
    );
  }

  async stop(): Promise<void> {
    await run('bash', [join(SCRIPTS, 'control-plane.sh'), 'stop'], {
      env: { ...process.env, ORDERSAGA_K8S_RUN_DIR: this.runDir },
    });
    rmSync(this.runDir, { recursive: true, force: true });
  }

  /** Runs the control-plane script on this cluster (e.g. stopping and starting only the API server). */
  async controlPlane(...args: string[]): Promise<string> {
    const { stdout } = await run('bash', [join(SCRIPTS, 'control-plane.sh'), ...args], {
      env: { ...process.env, ORDERSAGA_K8S_RUN_DIR: this.runDir },
    });
    return stdout;
  }

  /** Runs kubectl (as the admin, or with another kubeconfig) and returns its output. */
  async kubectl(args: string[], options: { kubeconfig?: string; input?: string } = {}): Promise<string> {
    const child = execFile(this.kubectlPath, args, {
      env: { ...this.toolEnv, KUBECONFIG: options.kubeconfig ?? this.kubeconfig },
      maxBuffer: 16 * 1024 * 1024,
    });
    if (options.input !== undefined) child.stdin!.end(options.input);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    if (code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${code}): ${stderr}`);
    return stdout;
  }

  /** Installs the Strimzi and Prometheus Operator CRDs (from shared/) and waits until they serve. */
  async installThirdPartyCrds(): Promise<void> {
    const crds = sharedCrds();
    await this.kubectl([
      'apply',
      '--server-side',
      '-f',
      join(crds, 'strimzi-1.2.0'),
      '-f',
      join(crds, 'prometheus-operator'),
    ]);
    // Right after the apply, `kubectl wait` can fail on a CRD it does not know yet: try again.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.kubectl(['wait', '--for=condition=Established', 'crd', '--all', '--timeout=30s']);
        return;
      } catch (err) {
        if (attempt >= 10) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** Runs helm against this cluster, its caches in the run dir (never in ~/.config or ~/.cache). */
  async helm(args: string[]): Promise<string> {
    const { stdout } = await run(this.helmPath, args, { env: this.toolEnv, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  }

  /** What kubectl, helm and a shell see: this cluster, and a home and caches in the run dir. */
  private get toolEnv(): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      HOME: this.runDir,
      KUBECONFIG: this.kubeconfig,
      HELM_CACHE_HOME: join(this.runDir, 'helm', 'cache'),
      HELM_CONFIG_HOME: join(this.runDir, 'helm', 'config'),
      HELM_DATA_HOME: join(this.runDir, 'helm', 'data'),
    };
  }

  /**
   * Runs a bash script (set -euo pipefail) in the repository's root as a user would, with this
   * cluster's kubectl and helm, and skaffold, on PATH (skaffold's update check off: there is no
   * internet here); what it leaves running in the background is stopped.
   */
  async shell(script: string): Promise<string> {
    const tools = [this.kubectlPath, this.helmPath, await tool('SKAFFOLD_BIN')].map((t) => dirname(t));
    const { stdout } = await run(
      'bash',
      ['-c', `set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n${script}`],
      {
        cwd: ROOT,
        env: { ...this.toolEnv, PATH: [...tools, process.env.PATH].join(':'), SKAFFOLD_UPDATE_CHECK: 'false' },
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    return stdout;
  }

  /**
   * A kubeconfig that acts as a ServiceAccount (a token of its own): what runs with it has that
   * account's RBAC, not the admin's.
   */
  async serviceAccountKubeconfig(name: string, namespace: string): Promise<string> {
    const token = (await this.kubectl(['create', 'token', name, '-n', namespace, '--duration=2h'])).trim();
    const config = JSON.parse(await this.kubectl(['config', 'view', '--raw', '-o', 'json']));
    config.users = [{ name, user: { token } }];
    for (const context of config.contexts) context.context.user = name;
    const path = join(this.runDir, `${namespace}.${name}.kubeconfig`);
    writeFileSync(path, JSON.stringify(config));
    return path;
  }

  async json(args: string[], options?: { kubeconfig?: string }): Promise<any> {
    return JSON.parse(await this.kubectl([...args, '-o', 'json'], options));
  }
}
