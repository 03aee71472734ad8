/** Every HGQ layer (tfjs-layers custom layers, each registered for serialization when this module is imported). See README.md here. */
export {
  QLayer,
  setCalibrating,
  isCalibrating,
  setFiniteCheck,
  type QLayerArgs,
  type LayerExport,
  type QuantizerExport,
  type ConstExport,
  type QConf,
} from './base.ts';
export { QDense, QBatchNormDense, ACTIVATIONS, type Activation, type QDenseArgs, type QBatchNormDenseArgs } from './dense.ts';
export { QConv1D, QConv2D, type QConvArgs } from './conv.ts';
export { QBatchNormalization, type QBatchNormalizationArgs } from './batchnorm.ts';
export { QAdd, QSubtract, QMultiply, QMaximum, QMinimum } from './merge.ts';
export * from './pooling.ts';
export { QFlatten, QReshape, QConcatenate, type QReshapeArgs, type QConcatenateArgs } from './shape.ts';
export {
  QUnaryFunctionLUT,
  QSoftmax,
  registerLutFunction,
  tableEbops,
  type TableExport,
  type UnaryFn,
  type QUnaryFunctionLUTArgs,
  type QSoftmaxArgs,
} from './table.ts';
export { QDenseT, QConvT1D, QConvT2D, type QDenseTArgs, type QConvTArgs, type TableLayerExport } from './table-dense.ts';
export { QEinsumDenseT, type QEinsumDenseTArgs } from './table-einsum.ts';
export { QEinsumDense, QEinsumDenseBatchnorm, type QEinsumDenseArgs, type QEinsumDenseBatchnormArgs } from './einsum.ts';
export { QSum, type QSumArgs } from './sum.ts';
export { GetItem, type GetItemArgs, type KeyEntry, type SliceSpec } from './getitem.ts';
export { hgqLayers, modelEbops, modelBeta, setModelBeta, isHgqLayer, type HgqLayerContract } from './model.ts';
