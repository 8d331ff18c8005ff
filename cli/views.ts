// What the listing commands print for people (their --json forms are built in main.ts and never
// change shape: scripts read them). Every function here is pure: data in, text out. Table cells
// are escaped by table.ts; every line built here outside a table goes through escapeControls, since
// what it quotes (pods' reasons, events' fields) came from the network.
import { escapeControls } from '../lib/text';
import type { ApiKey, Model, ModelIndexEntry, Pod, RegistryEvent, RolloutStatus, Version } from '../client/index';
import { formatFields, formatTable, paint, styled, type Cell, type Style, type TableOptions } from './table';
import { formatBytes, formatTime } from './format';

/** A traffic split as `1:90% 2:10%`; '' when the model serves nothing. */
export function formatTraffic(traffic: readonly { version: number; weight: number }[]): string {
  return traffic.map((t) => `${t.version}:${t.weight}%`).join(' ');
}

/** A tensor signature in short form: `input:FP32[?,784]` (? for a dynamic dimension). */
export function formatSignature(tensors: readonly { name: string; datatype: string; shape: readonly (string | number)[] }[]): string {
  return tensors.map((t) => `${t.name}:${t.datatype}[${t.shape.map((d) => (Number(d) < 0 ? '?' : String(d))).join(',')}]`).join(' ');
}

/** The colour of a model version's state on a pod: READY green, LOADING/UNLOADING yellow, else red. */
export function stateStyle(state: string): Style {
  return state === 'READY' ? 'green' : state === 'LOADING' || state === 'UNLOADING' ? 'yellow' : 'red';
}

const phaseStyle = (phase: string): Style | undefined =>
  phase === 'promoted' ? 'green' : phase === 'rolled_back' ? 'red' : phase === 'progressing' || phase === 'paused' ? 'yellow' : undefined;

/** Whether a rollout is still moving traffic (not yet promoted or rolled back). */
const isActive = (phase: string | undefined) => phase === 'progressing' || phase === 'paused';

/**
 * `infermesh models`: NAME, LATEST, TRAFFIC, ROLLOUT (phase and canary weight of a rollout in
 * progress, else -), PODS (each version's state on the pods; ? when no router answered); then the
 * pods' reasons for versions that failed to load or warm up, one a line.
 */
export function modelsView(
  models: readonly Model[],
  serving: readonly ModelIndexEntry[] | undefined,
  rollouts: ReadonlyMap<string, RolloutStatus | undefined>,
  opts: TableOptions = {},
): string {
  // With placement on, how many pods each served version is placed on (docs/placement.md).
  const placed = models.some((m) => m.placed);
  const rows = models.map((m): Cell[] => {
    const status = rollouts.get(m.name);
    const r = status?.rollout;
    const rollout: Cell = status === undefined ? '?' : r && isActive(r.phase) ? styled(`${r.phase} ${r.weight}%`, phaseStyle(r.phase)!) : '-';
    const mine = serving?.filter((s) => s.name === m.name) ?? [];
    const worst = mine.map((s) => stateStyle(s.state)).sort((a, b) => rank(b) - rank(a))[0];
    const pods: Cell = serving === undefined ? '?' : mine.length === 0 ? '-' : styled(mine.map((s) => `v${s.version} ${s.state}`).join(', '), worst ?? 'green');
    const row: Cell[] = [m.name, m.latest_version || '-', formatTraffic(m.traffic), rollout, pods];
    if (placed) row.splice(3, 0, copiesOf(m));
    return row;
  });
  const headers = placed ? ['NAME', 'LATEST', 'TRAFFIC', 'COPIES', 'ROLLOUT', 'PODS'] : ['NAME', 'LATEST', 'TRAFFIC', 'ROLLOUT', 'PODS'];
  const table = formatTable(headers, rows, { ...opts, empty: 'No models yet: push one with `infermesh push <model> <file.onnx>`.' });
  const reasons = (serving ?? []).filter((s) => s.reason && models.some((m) => m.name === s.name)).map((s) => escapeControls(`${s.name} v${s.version} ${s.state}: ${s.reason}`));
  return reasons.length ? `${table}\n\n${reasons.join('\n')}` : table;
}

/** The pods each served version is placed on: `v1×2 v2×1`; `-` when none holds any (loaded on request). */
function copiesOf(m: Model): string {
  const served = m.traffic.map((t) => t.version);
  const copies = served.map((v) => `v${v}×${m.placement.find((p) => p.version === v)?.pods.length ?? 0}`);
  return copies.length === 0 || m.placement.length === 0 ? '-' : copies.join(' ');
}

function rank(s: Style): number {
  return s === 'red' ? 2 : s === 'yellow' ? 1 : 0;
}

/** A version's state without the enum's prefix: AVAILABLE, ARCHIVED. */
export function versionState(state: string): string {
  return state.replace(/^VERSION_STATE_/, '');
}

/** `infermesh versions <model>`: VERSION, STATE, SIZE, SHA256 (first 12 hex), CREATED, INPUTS, OUTPUTS. */
export function versionsView(versions: readonly Version[], opts: TableOptions = {}): string {
  const rows = versions.map((v): Cell[] => {
    const state = versionState(v.state);
    return [v.version, state === 'AVAILABLE' ? state : styled(state, 'dim'), formatBytes(Number(v.size_bytes)), v.sha256.slice(0, 12), formatTime(v.created_at), formatSignature(v.inputs), formatSignature(v.outputs)];
  });
  return formatTable(['VERSION', 'STATE', { header: 'SIZE', align: 'right' }, 'SHA256', 'CREATED', 'INPUTS', 'OUTPUTS'], rows, { ...opts, empty: 'No versions.' });
}

/**
 * `infermesh pods`: NAME, ADDRESS, STATE, PROVIDER (what its sessions really run on: a pod that
 * asked for a GPU and fell back says cpu), VERSIONS (model:version, state and what loading it cost
 * on that pod), MEMORY (its models' memory over its budget, - when it reports none), IN FLIGHT,
 * SEEN (its last heartbeat); then the reasons of versions that failed, one a line.
 */
export function podsView(pods: readonly Pod[], opts: TableOptions = {}): string {
  const rows = pods.map((p): Cell[] => {
    const providers = [...new Set(p.versions.map((v) => v.provider).filter(Boolean))].join(',');
    const worst = p.versions.map((v) => stateStyle(v.state)).sort((a, b) => rank(b) - rank(a))[0];
    const versions: Cell = p.versions.length === 0 ? '-' : styled(p.versions.map((v) => `${v.model}:${v.version} ${v.state}${Number(v.memory_bytes) > 0 ? ` ${formatBytes(Number(v.memory_bytes))}` : ''}`).join(', '), worst ?? 'green');
    const budget = Number(p.memory_budget_bytes);
    const memory = budget > 0 ? `${formatBytes(Number(p.memory_used_bytes))} / ${formatBytes(budget)}` : '-';
    return [p.name, p.address, styled(p.state, p.state === 'serving' ? 'green' : 'yellow'), providers || '-', versions, memory, p.inflight, formatTime(p.seen_at)];
  });
  const table = formatTable(['NAME', 'ADDRESS', 'STATE', 'PROVIDER', 'VERSIONS', { header: 'MEMORY', align: 'right' }, { header: 'IN FLIGHT', align: 'right' }, 'SEEN'], rows, { ...opts, empty: 'No pods announce themselves: are any running (`npm start` runs two)?' });
  const reasons = pods.flatMap((p) => p.versions.filter((v) => v.reason).map((v) => escapeControls(`${p.name} ${v.model}:${v.version} ${v.state}: ${v.reason}`)));
  return reasons.length ? `${table}\n\n${reasons.join('\n')}` : table;
}

/** `infermesh keys list`: ID, NAME, GRANTS, CREATED, CREATED BY, REVOKED (never a secret). */
export function keysView(keys: readonly ApiKey[], opts: TableOptions = {}): string {
  const rows = keys.map((k): Cell[] => [k.id, k.name, k.grants.join(','), formatTime(k.created_at), k.created_by, k.revoked_at ? styled(formatTime(k.revoked_at), 'red') : '-']);
  return formatTable(['ID', 'NAME', 'GRANTS', 'CREATED', 'CREATED BY', 'REVOKED'], rows, { ...opts, empty: 'No keys.' });
}

/**
 * `infermesh rollout status <model>` (and what every rollout action prints): the traffic, the
 * latest rollout's stable and canary versions, weight, phase, step, analysis and last reason, then
 * its history, oldest first.
 */
export function rolloutView(s: RolloutStatus, opts: TableOptions = {}): string {
  const r = s.rollout;
  const fields: [string, Cell | undefined][] = [
    ['Model', s.model],
    ['Traffic', formatTraffic(s.traffic) || 'none'],
  ];
  if (!r) {
    fields.push(['Rollout', 'none yet (start one: infermesh rollout start <model> <version>)']);
  } else {
    const step = r.steps.indexOf(r.weight);
    fields.push(
      ['Stable', `v${r.stable}`],
      ['Canary', `v${r.canary}`],
      ['Weight', `${r.weight}%`],
      ['Phase', styled(r.phase, phaseStyle(r.phase) ?? 'bold')],
      ['Step', stepText(r.steps, step, isActive(r.phase))],
      ['Analysis', r.automatic ? analysisText(r) : 'off (manual: weight, promote and rollback by hand)'],
      ['Reason', r.reason || '-'],
    );
  }
  const head = formatFields(fields, opts);
  if (s.history.length === 0) return head;
  const history = formatTable(
    ['TIME', 'ACTION', 'STABLE', 'CANARY', { header: 'WEIGHT', align: 'right' }, 'REASON'],
    s.history.map((h): Cell[] => [formatTime(h.time), h.action, `v${h.stable}`, `v${h.canary}`, `${h.weight}%`, h.reason]),
    opts,
  );
  return `${head}\n\nHistory:\n${history}`;
}

function stepText(steps: readonly number[], step: number, active: boolean): string {
  if (steps.length === 0) return 'none planned';
  const plan = `${steps.map((w) => `${w}%`).join(', ')}, then promote`;
  return active && step >= 0 ? `${step + 1} of ${steps.length} (${plan})` : `planned ${plan}`;
}

function analysisText(r: NonNullable<RolloutStatus['rollout']>): string {
  const a = r.analysis;
  const rules = a ? `; advance after ${a.windows_to_advance} passing windows, roll back after ${a.windows_to_fail} failing` : '';
  return `automatic: ${r.passes} passing, ${r.fails} failing window${r.fails === 1 ? '' : 's'} in a row${rules}`;
}

/** The salient fields of an event, after its type. */
function eventDetails(e: RegistryEvent): string {
  switch (e.type) {
    case 'model.created': return '';
    case 'version.published': return `v${e.version} ${formatBytes(e.sizeBytes)} sha256 ${e.sha256.slice(0, 12)}`;
    case 'traffic.changed': return formatTraffic(e.traffic) || 'none';
    case 'model.config.changed': {
      const b = e.config.dynamicBatching;
      const parts = [
        e.description && `description ${JSON.stringify(e.description)}`,
        Object.keys(e.labels).length > 0 && `labels ${Object.entries(e.labels).map(([k, v]) => `${k}=${v}`).join(',')}`,
        b && `batching ${b.enabled ? 'on' : 'off'}${b.maxBatchSize ? ` max ${b.maxBatchSize}` : ''}${b.maxQueueDelayUs ? ` delay ${b.maxQueueDelayUs} us` : ''}`,
        e.config.warmup && `${e.config.warmup.length} warm-up sample${e.config.warmup.length === 1 ? '' : 's'}`,
      ];
      return parts.filter(Boolean).join(', ');
    }
    case 'version.archived': return `v${e.version}`;
    case 'version.deleted': return `v${e.version}${e.artifactDeleted ? '' : ' (artifact kept: another version has it)'}`;
    case 'rollout.changed': return `${e.action}: v${e.stable} -> v${e.canary} at ${e.weight}% (${e.phase})${e.reason ? `: ${e.reason}` : ''}`;
    case 'key.created': return `${e.keyId} ${JSON.stringify(e.name)} ${e.grants.join(',')}`;
    case 'key.revoked': return `${e.keyId} ${JSON.stringify(e.name)}`;
    case 'placement.changed': {
      const moves = [...e.placed.map((p) => `+${p}`), ...e.removed.map((p) => `-${p}${e.evicted.includes(p) ? ' (evicted)' : ''}`)];
      return `v${e.version} on ${e.pods.length ? e.pods.join(',') : 'no pod'}${moves.length ? ` [${moves.join(' ')}]` : ''}: ${e.reason.replace('_', ' ')}`;
    }
    default: return '';
  }
}

/**
 * One event on one line: its stream sequence (for --from), time, model (- for none), type, its
 * salient fields, and who caused it:
 * `#12  2025-06-01 12:00:03Z  mnist  version.published     v2 407.6 kB sha256 3f2a9c01b7de  by key:0123…`
 */
export function eventLine(sequence: number, e: RegistryEvent, opts: TableOptions = {}): string {
  const parts = [`#${sequence}`.padEnd(4), escapeControls(formatTime(e.time)), escapeControls(e.model || '-').padEnd(8), paint(escapeControls(e.type).padEnd(20), 'bold', opts.color), escapeControls(eventDetails(e)), e.principal ? escapeControls(`by ${e.principal}`) : ''];
  return parts.filter((p) => p !== '').join('  ').replace(/ +$/, '');
}
