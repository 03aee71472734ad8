/**
 * 2-D matmul whose gradient uses explicit transposes. On the wasm backend (tfjs 4.22) BatchMatMul with
 * transposeA/transposeB bypasses XNNPACK and runs ~5–10× slower than transposing first; the stock matMul
 * gradient uses those flags, so training time was dominated by them.
 */
import * as tf from '@tensorflow/tfjs';

type Fn = Parameters<typeof tf.customGrad>[0];

const mm = tf.customGrad(((x: tf.Tensor2D, w: tf.Tensor2D, save: tf.GradSaveFunc) => {
  save([x, w]);
  return {
    value: tf.matMul(x, w),
    gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
      const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
      return [tf.matMul(dy, tf.transpose(ws)), tf.matMul(tf.transpose(xs), dy)];
    },
  };
}) as unknown as Fn) as unknown as (x: tf.Tensor2D, w: tf.Tensor2D) => tf.Tensor2D;

export function matMul2d(x: tf.Tensor, w: tf.Tensor): tf.Tensor2D {
  return mm(x as tf.Tensor2D, w as tf.Tensor2D);
}
