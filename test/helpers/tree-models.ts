// ai.onnx.ml tree ensembles built for tests: a decision tree as deep as asked (onnxruntime builds a
// tree by recursing once per level, so a deep one overflows a thread's stack), or a forest of many
// shallow trees, as a TreeEnsembleRegressor over X (FP32 [-1, 1]) making Y (FP32 [-1, 1]).
import { onnx } from 'onnx-proto';

const FLOAT = 1;
const { INTS, FLOATS, STRINGS, INT } = onnx.AttributeProto.AttributeType;

interface Tree {
  /** Per node: its id, mode, threshold, and the ids of its true and false children (0 for a leaf). */
  nodes: { id: number; mode: 'BRANCH_LEQ' | 'LEAF'; value: number; yes: number; no: number }[];
  /** The leaf whose weight is 1 (the others weigh nothing). */
  leaf: number;
}

/** One tree: a chain of `depth` decisions `x <= i`, each with a leaf on its true side; x beyond them all reaches the last leaf. */
function chain(depth: number): Tree {
  const nodes: Tree['nodes'] = [];
  for (let i = 0; i < depth; i++) nodes.push({ id: i, mode: 'BRANCH_LEQ', value: i, yes: depth + i, no: i + 1 < depth ? i + 1 : 2 * depth });
  for (let i = 0; i <= depth; i++) nodes.push({ id: depth + i, mode: 'LEAF', value: 0, yes: 0, no: 0 });
  return { nodes, leaf: 2 * depth };
}

/**
 * The model's bytes: `trees` chains `depth` decisions deep, their last leaves weighing 1 each (so
 * Y = trees for x ≥ depth); `treeId` numbers each tree in nodes_treeids (default: 0, 1, 2…).
 */
export function treeModel(depth: number, trees = 1, treeId = (tree: number) => tree): Buffer {
  const all = Array.from({ length: trees }, () => chain(depth));
  const per = <T>(f: (n: Tree['nodes'][number], tree: number) => T) => all.flatMap((t, tree) => t.nodes.map((n) => f(n, tree)));
  const ints = (name: string, v: number[]): onnx.IAttributeProto => ({ name, type: INTS, ints: v });
  const attribute: onnx.IAttributeProto[] = [
    ints('nodes_treeids', per((_, tree) => treeId(tree))),
    ints('nodes_nodeids', per((n) => n.id)),
    ints('nodes_featureids', per(() => 0)),
    { name: 'nodes_values', type: FLOATS, floats: per((n) => n.value) },
    { name: 'nodes_modes', type: STRINGS, strings: per((n) => Buffer.from(n.mode)) },
    ints('nodes_truenodeids', per((n) => n.yes)),
    ints('nodes_falsenodeids', per((n) => n.no)),
    ints('target_treeids', all.map((_, tree) => treeId(tree))),
    ints('target_nodeids', all.map((t) => t.leaf)),
    ints('target_ids', all.map(() => 0)),
    { name: 'target_weights', type: FLOATS, floats: all.map(() => 1) },
    { name: 'n_targets', type: INT, i: 1 },
  ];
  const io = (name: string): onnx.IValueInfoProto => ({ name, type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: 1 }] } } } });
  return Buffer.from(onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }, { domain: 'ai.onnx.ml', version: 3 }],
    graph: { name: 'trees', node: [{ name: 'trees', opType: 'TreeEnsembleRegressor', domain: 'ai.onnx.ml', input: ['X'], output: ['Y'], attribute }], input: [io('X')], output: [io('Y')] },
  }).finish());
}
