/**
 * Training progress on the terminal: on a TTY one cli-progress bar over all batches of the run, showing the
 * last finished epoch's loss, validation metric, EBOPs and β; elsewhere (logs, CI) one line per epoch.
 */
import * as tf from '@tensorflow/tfjs';
import cliProgress from 'cli-progress';

export interface EpochLine {
  epoch: number;
  loss: number;
  val: string;
  ebops: number;
  beta: number;
  seconds: number;
}

function fmt(x: number): string {
  return Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-2) ? x.toExponential(2) : x.toFixed(3);
}

export class RunProgress {
  private bar: cliProgress.SingleBar | undefined;
  private readonly tty: boolean;
  /** the batch ticker given to each epoch's fit */
  readonly ticker: tf.Callback;

  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly epochs: number,
    steps: number,
    startEpoch: number,
  ) {
    this.tty = Boolean((stream as NodeJS.WriteStream).isTTY);
    const self = this;
    this.ticker = new (class extends tf.Callback {
      override async onBatchEnd(): Promise<void> {
        self.bar?.increment(1);
      }
    })();
    if (this.tty) {
      this.bar = new cliProgress.SingleBar(
        {
          format:
            'epoch {epoch}/{epochs} [{bar}] {percentage}% | loss {loss} {val} | EBOPs {ebops} β {beta} | ETA {eta_formatted}',
          stream: stream as NodeJS.WritableStream & { isTTY: boolean },
          barsize: 20,
          hideCursor: false,
          clearOnComplete: false,
          etaBuffer: steps * 2,
        },
        cliProgress.Presets.legacy,
      );
      this.bar.start(epochs * steps, startEpoch * steps, {
        epoch: startEpoch + 1,
        epochs,
        loss: '-',
        val: '',
        ebops: '-',
        beta: '-',
      });
    }
  }

  epochDone(e: EpochLine): void {
    if (this.bar)
      this.bar.update({
        epoch: Math.min(e.epoch + 2, this.epochs),
        loss: fmt(e.loss),
        val: e.val,
        ebops: fmt(e.ebops),
        beta: fmt(e.beta),
      });
    else
      this.stream.write(
        `epoch ${e.epoch + 1}/${this.epochs} loss ${fmt(e.loss)} ${e.val} EBOPs ${fmt(e.ebops)} β ${fmt(e.beta)} (${e.seconds.toFixed(1)} s)\n`,
      );
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
