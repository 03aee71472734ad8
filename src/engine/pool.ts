/**
 * The engines' one pool protocol: every round, each thread runs a list of kernel calls. The calling thread runs
 * its own list directly; worker t's list is encoded as float64 words in its area of the shared memory —
 * [n, (fn, nargs, ...args) × n], fn an index into KERNEL_CALLS — and the sum of its calls' numeric results comes
 * back in the area's last word. Control block (CTRL.words Int32 words at `ctrl`): [0] round counter (workers
 * wait on it), [1] stop flag, [3] index of a failed worker or 0, [CTRL.claim + t] the last round whose list t
 * was claimed, [CTRL.done + t] the last round whose list t a worker finished. No messages per round.
 *
 * A list goes to whichever thread claims it first (compare-and-swap of its claim word to the round number):
 * its worker, or the calling thread once its own list is done. On a busy machine a descheduled worker then
 * costs nothing — the calling thread runs its list — instead of stalling the round until it is scheduled.
 */
import type { KernelExports, WasmMemory, WasmModule } from './kernels.ts';
import type { WorkerPool, WorkerPoolFactory } from './types.ts';

/** The kernels a worker may run, by index (the call lists' fn word). */
export const KERNEL_CALLS = [
  'run_slice',
  'act_q',
  'dense_fwd',
  'dense_bwd_dw',
  'dense_bwd_dx_t',
  'act_q_bwd',
  'relu_mask',
  'copy_f32',
  'add_into',
  'max_into',
  'zero',
  'perm_rows',
  'im2col',
  'col2im_add',
  'pool_max_fwd',
  'pool_max_bwd',
  'pool_avg_fwd',
  'pool_avg_bwd',
  'bn_stats',
  'bn_dx_add',
  'transpose_in',
  'softmax_ce',
  'mse',
  'chan_affine',
  'chan_affine_bwd',
  'ew_fwd',
  'ew_bwd',
  'lut_fwd',
  'lut_q',
  'lut_q_bwd',
  'lut_bwd',
  'relu_fwd',
  // the per-parameter phase
  'clamp',
  'kbi_fwd',
  'kbi_bwd',
  'transpose_w_rows',
  'prep_act',
  'kif_grads',
  'ebops_dense_rows',
  'ebops_bias',
  'add_scalar',
  'adam',
] as const satisfies readonly (keyof KernelExports)[];
export type Call = [(typeof KERNEL_CALLS)[number], ...number[]];
const FN_INDEX = new Map<string, number>(KERNEL_CALLS.map((n, j) => [n, j]));

/** float64 words of call list per thread */
export const AREA_WORDS = 8192;
const MAX_THREADS = 256;
/** control block words: claim and done words per list */
export const CTRL = { round: 0, stop: 1, error: 3, claim: 8, done: 8 + MAX_THREADS, words: 8 + 2 * MAX_THREADS } as const;
export const CTRL_BYTES = 4 * CTRL.words;

/** Runs rounds of kernel calls on the calling thread and a pool's workers (or on the calling thread alone). */
export class Rounds {
  private pool: WorkerPool | null = null;

  /** `ctrl` (CTRL_BYTES) and `area` (threads × AREA_WORDS float64 words) are reserved in `memory` by the engine. */
  constructor(
    private readonly k: KernelExports,
    private readonly memory: WasmMemory,
    readonly threads: number,
    private readonly ctrl: number,
    private readonly area: number,
  ) {}

  /** Starts threads − 1 workers from `factory`. */
  async start(factory: WorkerPoolFactory, module: WasmModule): Promise<void> {
    if (this.threads <= 1) return;
    this.pool = await factory({
      module,
      memory: this.memory,
      ctrl: this.ctrl,
      area: this.area,
      areaWords: AREA_WORDS,
      workers: this.threads - 1,
      fns: KERNEL_CALLS,
    });
  }

  /** Runs the calls on the calling thread only (no workers woken); returns the sum of their numeric results. */
  here(calls: Call[]): number {
    let res = 0;
    const k = this.k as unknown as Record<string, (...a: number[]) => unknown>;
    for (const c of calls) {
      const r = k[c[0]]!(...(c.slice(1) as number[]));
      if (typeof r === 'number') res += r;
    }
    return res;
  }

  /** Every thread t runs callsOf(t), thread 0 here; returns the sum of the calls' numeric results. */
  run(callsOf: (t: number) => Call[]): number {
    let res = 0;
    const own = () => {
      res += this.here(callsOf(0));
    };
    if (!this.pool) {
      own();
      return res;
    }
    const T = this.threads;
    const a = new Float64Array(this.memory.buffer, this.area, T * AREA_WORDS);
    const lists: Call[][] = [[]],
      taken: boolean[] = [];
    for (let t = 1; t < T; t++) encode(a, t * AREA_WORDS, (lists[t] = callsOf(t)));
    this.pool.run(own, (t) => {
      taken[t] = true;
      res += this.here(lists[t]!);
    });
    for (let t = 1; t < T; t++) if (!taken[t]) res += a[t * AREA_WORDS + AREA_WORDS - 1]!;
    return res;
  }

  dispose(): void {
    this.pool?.dispose();
    this.pool = null;
  }
}

function encode(a: Float64Array, base: number, calls: Call[]): void {
  let p = base + 1;
  for (const c of calls) {
    if (p + c.length + 1 >= base + AREA_WORDS - 1)
      throw new Error('hgq engine: too many kernel calls for one worker (use a larger batch per chunk)');
    a[p] = FN_INDEX.get(c[0])!;
    a[p + 1] = c.length - 1;
    for (let j = 1; j < c.length; j++) a[p + 1 + j] = c[j] as number;
    p += c.length + 1;
  }
  a[base] = calls.length;
}

/** Threads to use when the caller does not say: all cores (1 where they cannot be counted). */
export async function defaultThreads(): Promise<number> {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  if (nav?.hardwareConcurrency) return nav.hardwareConcurrency;
  try {
    const os = await import('node:os');
    return os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  } catch {
    return 1;
  }
}

/** The pool factory to use: the caller's, Node's worker_threads one, or none (one thread) elsewhere. */
export async function poolFactoryFor(factory: WorkerPoolFactory | undefined): Promise<WorkerPoolFactory | undefined> {
  if (factory) return factory;
  const isNode = typeof process !== 'undefined' && !!process.versions?.node;
  return isNode ? (await import('./pool-node.ts')).nodePoolFactory : undefined;
}
