// The infermesh web console: plain TypeScript over the registry's console API
// (services/registry/console/, docs/console.md). Four views (models, one model, pods, events),
// each fed by one live stream (server-sent events read with fetch, so the token goes in a header),
// charts drawn with uPlot (loaded before this script as the global `uPlot`).

// ---- The API's shapes (as services/registry/console/console-api.ts answers) ----

interface TrafficWeight { version: number; weight: number }
interface Model { name: string; description: string; latest_version: number; traffic: TrafficWeight[]; created_at: string }
interface Tensor { name: string; datatype: string; shape: string[] }
interface Version { model: string; version: number; sha256: string; size_bytes: string; created_at: string; inputs: Tensor[]; outputs: Tensor[]; state: string }
interface Analysis { min_requests: number; max_error_rate_increase_points: number; max_p99_latency_ratio: number; windows_to_fail: number; windows_to_advance: number }
interface Rollout { stable: number; canary: number; weight: number; steps: number[]; phase: string; automatic: boolean; analysis: Analysis | null; passes: number; fails: number; reason: string }
interface HistoryEntry { time: string; action: string; stable: number; canary: number; weight: number; reason: string }
interface RolloutStatus { model: string; traffic: TrafficWeight[]; rollout: Rollout | null; history: HistoryEntry[] }
interface WindowVersion { version: number; requests: number; errors: number; rps: number; error_rate: number; p50_ms: number; p99_ms: number; p50_over: boolean; p99_over: boolean }
interface WindowPoint { start: number; ms: number; versions: WindowVersion[] }
interface MeshEvent { id: string; time: string; model: string; type: string; principal?: string; [k: string]: unknown }
interface SequencedEvent { sequence: number; event: MeshEvent }
interface ModelEntry { model: Model; versions: Version[]; rollout: RolloutStatus }
interface ModelPage extends ModelEntry { windows: WindowPoint[]; window_ms: number; windows_kept: number; events: SequencedEvent[]; may: { rollout: boolean } }
interface PodVersion { model: string; version: number; state: string; provider: string; reason: string; memory_bytes: string }
interface Pod { name: string; address: string; state: string; versions: PodVersion[]; inflight: number; seen_at: string; identity: string; memory_budget_bytes: string; memory_used_bytes: string; rss_bytes: string }

// uPlot's part that the console uses.
interface UPlotSeries { label?: string; stroke?: string; width?: number; dash?: number[]; value?: (u: unknown, v: number | null) => string }
interface UPlotOptions { title?: string; width: number; height: number; series: UPlotSeries[]; axes?: object[]; scales?: object; legend?: object }
interface UPlotChart { setData(data: (number | null)[][]): void; setSize(size: { width: number; height: number }): void; destroy(): void }
declare const uPlot: new (opts: UPlotOptions, data: (number | null)[][], target: HTMLElement) => UPlotChart;

// ---- Small helpers ----

const main = document.getElementById('main')!;
const statusLine = document.getElementById('status')!;
const TOKEN_KEY = 'infermesh.token';

type Child = Node | string | null | undefined | false;

/** Makes an element: attributes (`on…` functions become listeners) and children. */
function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, unknown> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false || v === null) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v as EventListener);
    else if (k === 'class') el.className = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/** The children that are something. */
function nodes(...children: Child[]): (Node | string)[] {
  return children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false);
}

let sayTimer: number | undefined;

/** Says `text` in the status line (read out by screen readers); a passing note goes after 5 s. */
function say(text: string, stays = false): void {
  statusLine.textContent = text;
  clearTimeout(sayTimer);
  if (text && !stays) sayTimer = window.setTimeout(() => (statusLine.textContent = ''), 5_000);
}

function token(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const t = token();
  return t ? { ...extra, authorization: `Bearer ${t}` } : extra;
}

class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(path, { ...init, headers: headers((init.headers as Record<string, string>) ?? {}) });
  const body = await res.json().catch(() => ({})) as { error?: string };
  if (!res.ok) throw new ApiError(res.status, body.error ?? res.statusText);
  return body as T;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const bytes = (n: number) => (n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(1)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);
const when = (iso: string) => new Date(iso).toLocaleString();
const sig = (ts: Tensor[]) => ts.map((t) => `${t.name} ${t.datatype}[${t.shape.join(',')}]`).join(', ');
const trafficText = (t: TrafficWeight[]) => (t.length ? t.map((w) => `v${w.version} ${w.weight}%`).join(' · ') : 'nothing served');

/** A colour per version that keeps its contrast on the page's background. */
const PALETTE = ['#1f5fbf', '#b3471d', '#137a3d', '#7a3fb3', '#a3155f', '#5b6b00', '#00708a', '#8a5a00'];
const colourOf = (version: number) => PALETTE[version % PALETTE.length]!;

/** A traffic split drawn as one bar, with the same in text for those who do not see it. */
function trafficBar(t: TrafficWeight[]): HTMLElement {
  const bar = h('div', { class: 'split', role: 'img', 'aria-label': `Traffic split: ${trafficText(t)}` });
  for (const w of t) {
    if (w.weight === 0) continue;
    const seg = h('span', { class: 'segment', title: `version ${w.version}: ${w.weight}%` }, `v${w.version} ${w.weight}%`);
    seg.style.width = `${w.weight}%`;
    seg.style.background = colourOf(w.version);
    bar.append(seg);
  }
  return h('div', { class: 'split-wrap' }, bar, h('p', { class: 'split-text', 'data-testid': 'split' }, trafficText(t)));
}

function table(head: string[], rows: Child[][], caption?: string): HTMLTableElement {
  return h('table', {},
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {}, ...head.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, ...rows.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c))))));
}

/** A short, human summary of an event. */
function eventSummary(e: MeshEvent): string {
  switch (e.type) {
    case 'rollout.changed': return `${String(e.action)}: v${String(e.stable)} → v${String(e.canary)} at ${String(e.weight)}% (${String(e.phase)}): ${String(e.reason)}`;
    case 'traffic.changed': return trafficText(e.traffic as TrafficWeight[]);
    case 'version.published': return `version ${String(e.version)} (${bytes(Number(e.sizeBytes))})`;
    case 'version.archived':
    case 'version.deleted': return `version ${String(e.version)}`;
    case 'key.created':
    case 'key.revoked': return `key ${String(e.keyId)} (${String(e.name)})`;
    default: return '';
  }
}

function eventRow(s: SequencedEvent): HTMLLIElement {
  const e = s.event;
  return h('li', { class: `event ${e.type.replace(/\./g, '-')}`, 'data-sequence': s.sequence },
    h('time', { datetime: e.time }, when(e.time)), ' ',
    h('strong', {}, e.model || '—'), ' ',
    h('code', {}, e.type), ' ',
    h('span', { class: 'summary' }, eventSummary(e)),
    e.principal ? h('span', { class: 'principal' }, ` by ${e.principal}`) : null);
}

// ---- Live streams ----

/** Reads /api/live with the token, calling `on` per message; reconnects until `signal` aborts. */
function live(query: string, on: (kind: string, data: unknown) => void, onOpen: () => void, signal: AbortSignal): void {
  let delayMs = 500;
  const run = async () => {
    while (!signal.aborted) {
      try {
        const res = await fetch(`/api/live?${query}`, { headers: headers(), signal });
        if (!res.ok || !res.body) throw new ApiError(res.status, res.statusText);
        delayMs = 500;
        onOpen();
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffered = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffered += value;
          let end: number;
          while ((end = buffered.indexOf('\n\n')) >= 0) {
            const block = buffered.slice(0, end);
            buffered = buffered.slice(end + 2);
            let kind = 'message';
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('event: ')) kind = line.slice(7);
              else if (line.startsWith('data: ')) data += line.slice(6);
            }
            if (data) on(kind, JSON.parse(data));
          }
        }
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof ApiError && err.status === 401) return void say('The live view needs a token: paste one above.');
      }
      if (signal.aborted) return;
      say('Live updates interrupted; reconnecting…');
      await new Promise((r) => setTimeout(r, delayMs));
      delayMs = Math.min(10_000, delayMs * 2);
    }
  };
  void run();
}

/** Calls `fn` once, `ms` after the last of a burst of calls. */
function debounce(fn: () => void, ms: number): () => void {
  let timer: number | undefined;
  return () => {
    clearTimeout(timer);
    timer = window.setTimeout(fn, ms);
  };
}

// ---- Views ----

let leaving = new AbortController();

async function showModels(signal: AbortSignal): Promise<void> {
  const render = async () => {
    const { models } = await api<{ models: ModelEntry[] }>('/api/models');
    if (signal.aborted) return;
    const rows = models.map((m) => {
      const r = m.rollout.rollout;
      const rollout = r && (r.phase === 'progressing' || r.phase === 'paused') ? `v${r.canary} at ${r.weight}% (${r.phase})` : r ? `last: ${r.phase.replace('_', ' ')}` : '—';
      return [h('a', { href: `/models/${encodeURIComponent(m.model.name)}` }, m.model.name), String(m.versions.length), `v${m.model.latest_version}`, trafficBar(m.model.traffic), rollout];
    });
    main.replaceChildren(h('h1', {}, 'Models'), models.length ? table(['Model', 'Versions', 'Latest', 'Traffic', 'Rollout'], rows) : h('p', {}, 'No models yet: push one with infermesh push <model> <file.onnx>.'));
  };
  await render();
  const again = debounce(() => void render().catch(showError), 300);
  live('topics=event', (kind) => kind === 'event' && again(), () => say(''), signal);
}

/** The charts of one model: requests per second, error rate and latency per version, with the analysis thresholds. */
class Charts {
  private readonly charts = new Map<string, { chart: UPlotChart; key: string }>();
  readonly element = h('section', { class: 'charts', 'aria-labelledby': 'charts-title' }, h('h2', { id: 'charts-title' }, 'Traffic per version'));
  private readonly latest = h('div', { class: 'latest' });
  private readonly figures = new Map<string, HTMLElement>();

  constructor(private windows: WindowPoint[], private rollout: Rollout | null, private readonly windowMs: number, private readonly kept: number) {
    for (const [id, title] of [['rps', 'Requests per second'], ['errors', 'Error rate (%)'], ['latency', 'Latency (ms)']] as const) {
      const fig = h('figure', { id: `chart-${id}`, 'data-testid': `chart-${id}` }, h('figcaption', {}, title));
      this.figures.set(id, fig);
      this.element.append(fig);
    }
    this.element.append(this.latest);
  }

  add(point: WindowPoint): void {
    this.windows = [...this.windows, point].slice(-this.kept);
    this.draw();
  }

  setRollout(r: Rollout | null): void {
    this.rollout = r;
    this.draw();
  }

  draw(): void {
    const versions = [...new Set(this.windows.flatMap((w) => w.versions.map((v) => v.version)))].sort((a, b) => a - b);
    const xs = this.windows.map((w) => (w.start + w.ms) / 1000);
    const at = (w: WindowPoint, v: number) => w.versions.find((x) => x.version === v);
    const active = this.rollout && (this.rollout.phase === 'progressing' || this.rollout.phase === 'paused') ? this.rollout : null;
    const a = active?.analysis;
    const stable = active?.stable;
    const series = (pick: (x: WindowVersion) => number, label: (v: number) => string) => versions.map((v) => ({ label: label(v), data: this.windows.map((w) => { const x = at(w, v); return x ? pick(x) : null; }), stroke: colourOf(v) }));
    const rps = series((x) => x.rps, (v) => `v${v}`);
    const errs = series((x) => x.error_rate * 100, (v) => `v${v}`);
    const lat = [...series((x) => x.p50_ms, (v) => `v${v} p50`), ...series((x) => x.p99_ms, (v) => `v${v} p99`).map((s) => ({ ...s, dash: [6, 4] }))];
    if (a && stable !== undefined) {
      // The analysis' limits on the canary, from the stable version's values of the same window.
      errs.push({ label: `limit (stable + ${a.max_error_rate_increase_points} points)`, stroke: '#000', data: this.windows.map((w) => { const s = at(w, stable); return s ? s.error_rate * 100 + a.max_error_rate_increase_points : null; }), dash: [2, 3] } as never);
      lat.push({ label: `limit (${a.max_p99_latency_ratio}× stable p99)`, stroke: '#000', data: this.windows.map((w) => { const s = at(w, stable); return s && !s.p99_over ? a.max_p99_latency_ratio * Math.max(1, s.p99_ms) : null; }), dash: [2, 3] } as never);
    }
    this.chart('rps', xs, rps);
    this.chart('errors', xs, errs);
    this.chart('latency', xs, lat);
    const last = this.windows[this.windows.length - 1];
    this.latest.replaceChildren(last
      ? table(['Version', 'Requests/s', 'Errors', 'p50 (ms)', 'p99 (ms)'], last.versions.map((v) => [`v${v.version}`, v.rps.toFixed(1), pct(v.error_rate), `${v.p50_over ? '> ' : ''}${v.p50_ms}`, `${v.p99_over ? '> ' : ''}${v.p99_ms}`]), `Last window, ending ${new Date(last.start + last.ms).toLocaleTimeString()} (${this.windowMs / 1000} s)`)
      : h('p', {}, 'No traffic counted yet: the charts fill as routers report their windows.'));
  }

  private chart(id: string, xs: number[], series: { label: string; data: (number | null)[]; stroke: string; dash?: number[] }[]): void {
    const fig = this.figures.get(id)!;
    const width = Math.max(280, Math.min(900, fig.clientWidth || 600));
    const key = series.map((s) => s.label).join('|');
    const data = [xs, ...series.map((s) => s.data)];
    const summary = series.map((s) => `${s.label}: ${s.data.length ? String(s.data[s.data.length - 1] === null ? 'none' : (s.data[s.data.length - 1] as number).toFixed(2)) : 'none'}`).join('; ');
    fig.setAttribute('aria-label', `${fig.querySelector('figcaption')?.textContent ?? id}, latest values: ${summary || 'no data'}`);
    fig.dataset.points = String(xs.length);
    fig.dataset.series = key;
    const existing = this.charts.get(id);
    if (existing && existing.key === key) return existing.chart.setData(data);
    existing?.chart.destroy();
    const chart = new uPlot({
      width, height: 200,
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.stroke, width: 2, dash: s.dash }))],
      // Time ticks as wall-clock times, at least 90 px apart (uPlot's default shows milliseconds for 1 s windows).
      axes: [{ space: 90, values: (_u: unknown, ticks: number[]) => ticks.map((t) => new Date(t * 1000).toLocaleTimeString()) }, { size: 60 }],
    }, data, fig);
    this.charts.set(id, { chart, key });
  }
}

async function showModel(name: string, signal: AbortSignal): Promise<void> {
  let page = await api<ModelPage>(`/api/models/${encodeURIComponent(name)}`);
  if (signal.aborted) return;
  const charts = new Charts(page.windows, page.rollout.rollout, page.window_ms, page.windows_kept);
  const header = h('div', {});
  const rolloutBox = h('section', { class: 'rollout', 'aria-labelledby': 'rollout-title' });
  const versionsBox = h('section', { 'aria-labelledby': 'versions-title' });
  const timeline = h('ol', { class: 'timeline', 'data-testid': 'timeline' });
  const events = h('ol', { class: 'events', 'data-testid': 'model-events' });

  const render = () => {
    const m = page.model;
    header.replaceChildren(...nodes(h('h1', {}, m.name), m.description ? h('p', {}, m.description) : null, trafficBar(page.rollout.traffic)));
    rolloutBox.replaceChildren(h('h2', { id: 'rollout-title' }, 'Rollout'), ...nodes(...rolloutPanel(page, act)));
    const serving = new Set(page.rollout.traffic.map((t) => t.version));
    versionsBox.replaceChildren(h('h2', { id: 'versions-title' }, 'Versions'), table(['Version', 'State', 'Serving', 'Size', 'SHA-256', 'Created', 'Inputs', 'Outputs'], page.versions.map((v) => [
      `v${v.version}`, v.state.replace('VERSION_STATE_', '').toLowerCase(), serving.has(v.version) ? 'yes' : 'no', bytes(Number(v.size_bytes)),
      h('code', { title: v.sha256 }, v.sha256.slice(0, 12)), when(v.created_at), sig(v.inputs), sig(v.outputs),
    ])));
    timeline.replaceChildren(...[...page.rollout.history].reverse().map((e) => h('li', {},
      h('time', { datetime: e.time }, when(e.time)), ' ', h('strong', {}, e.action.replace('_', ' ')), ` v${e.stable} → v${e.canary} at ${e.weight}%: `, h('span', { class: 'reason' }, e.reason))));
    charts.setRollout(page.rollout.rollout);
  };
  const act = async (body: Record<string, unknown>) => {
    try {
      const status = await api<RolloutStatus>(`/api/models/${encodeURIComponent(name)}/rollout`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      page = { ...page, rollout: status, model: { ...page.model, traffic: status.traffic } };
      render();
      say(`Done: ${String(body.action)}.`);
    } catch (err) {
      showError(err);
    }
  };
  events.replaceChildren(...page.events.slice().reverse().map(eventRow));
  render();
  main.replaceChildren(header, rolloutBox, charts.element, versionsBox,
    h('section', { 'aria-labelledby': 'history-title' }, h('h2', { id: 'history-title' }, 'Rollout history'), timeline),
    h('section', { 'aria-labelledby': 'model-events-title' }, h('h2', { id: 'model-events-title' }, 'Events'), events));
  charts.draw();
  const reload = debounce(() => {
    void api<ModelPage>(`/api/models/${encodeURIComponent(name)}`).then((p) => {
      if (signal.aborted) return;
      page = p;
      render();
    }).catch(showError);
  }, 200);
  live(`topics=event,window&model=${encodeURIComponent(name)}`, (kind, data) => {
    if (kind === 'window') charts.add((data as { point: WindowPoint }).point);
    if (kind === 'event') {
      events.prepend(eventRow(data as SequencedEvent));
      reload();
    }
  }, () => say(''), signal);
}

/** The rollout's state and, when the caller may, its actions. */
function rolloutPanel(page: ModelPage, act: (body: Record<string, unknown>) => Promise<void>): Child[] {
  const r = page.rollout.rollout;
  const active = r && (r.phase === 'progressing' || r.phase === 'paused');
  const facts: Child[] = [];
  if (r) {
    facts.push(h('dl', { class: 'facts', 'data-testid': 'rollout-facts' },
      h('dt', {}, 'Phase'), h('dd', { 'data-testid': 'phase' }, r.phase.replace('_', ' ')),
      h('dt', {}, 'Stable'), h('dd', {}, `v${r.stable}`),
      h('dt', {}, 'Canary'), h('dd', {}, `v${r.canary} at ${r.weight}%`),
      h('dt', {}, 'Steps'), h('dd', {}, r.steps.length ? r.steps.map((s) => `${s}%`).join(', ') : 'by hand'),
      h('dt', {}, 'Analysis'), h('dd', {}, r.automatic && r.analysis ? `automatic: ${r.passes} passing, ${r.fails} failing windows; fails above +${r.analysis.max_error_rate_increase_points} points of errors or ${r.analysis.max_p99_latency_ratio}× stable p99` : 'by hand'),
      h('dt', {}, 'Reason'), h('dd', { 'data-testid': 'rollout-reason' }, r.reason)));
  } else {
    facts.push(h('p', {}, 'No rollout yet.'));
  }
  if (!page.may.rollout) return [...facts, h('p', { class: 'note' }, 'Read-only: your token may not change rollouts of this model.')];
  if (active) {
    const weight = h('input', { id: 'weight', type: 'number', min: 0, max: 100, value: r.weight, 'aria-label': 'Canary weight (%)' });
    const reason = h('input', { id: 'reason', type: 'text', maxlength: 1024, placeholder: 'why (optional)', 'aria-label': 'Reason' });
    const reasonOf = () => reason.value.trim() || undefined;
    return [...facts, h('div', { class: 'actions' },
      h('label', { for: 'weight' }, 'Weight (%)'), weight,
      h('button', { type: 'button', onclick: () => act({ action: 'weight', weight: Number(weight.value) }) }, 'Set weight'),
      h('button', { type: 'button', onclick: () => act({ action: 'promote', reason: reasonOf() }) }, 'Promote'),
      h('label', { for: 'reason' }, 'Reason'), reason,
      h('button', { type: 'button', class: 'danger', onclick: () => act({ action: 'rollback', reason: reasonOf() }) }, 'Roll back'),
      r.phase === 'paused'
        ? h('button', { type: 'button', onclick: () => act({ action: 'resume' }) }, 'Resume')
        : h('button', { type: 'button', onclick: () => act({ action: 'pause', reason: reasonOf() }) }, 'Pause'))];
  }
  const serving = new Set(page.rollout.traffic.map((t) => t.version));
  const candidates = page.versions.filter((v) => v.state === 'VERSION_STATE_AVAILABLE' && !serving.has(v.version)).map((v) => v.version).sort((a, b) => b - a);
  if (candidates.length === 0) return [...facts, h('p', { class: 'note' }, 'Push a new version to start a canary.')];
  const version = h('select', { id: 'canary-version' }, ...candidates.map((v) => h('option', { value: v }, `v${v}`)));
  const weight = h('input', { id: 'canary-weight', type: 'number', min: 0, max: 100, value: 10 });
  const steps = h('input', { id: 'canary-steps', type: 'text', placeholder: 'e.g. 10,50,100 (optional)' });
  const automatic = h('input', { id: 'canary-automatic', type: 'checkbox' });
  const form = h('form', { class: 'actions', 'aria-label': 'Start a canary' },
    h('label', { for: 'canary-version' }, 'Canary version'), version,
    h('label', { for: 'canary-weight' }, 'Weight (%)'), weight,
    h('label', { for: 'canary-steps' }, 'Steps'), steps,
    h('label', { for: 'canary-automatic' }, automatic, ' Automatic analysis'),
    h('button', { type: 'submit' }, 'Start canary'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const list = steps.value.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
    void act({ action: 'start', version: Number(version.value), weight: Number(weight.value), ...(list.length && { steps: list }), automatic: automatic.checked });
  });
  return [...facts, form];
}

async function showPods(signal: AbortSignal): Promise<void> {
  const box = h('div', {});
  main.replaceChildren(h('h1', {}, 'Pods'), box);
  const render = (pods: Pod[]) => {
    box.replaceChildren(pods.length ? table(['Pod', 'Address', 'State', 'Provider', 'Versions', 'Model memory', 'In flight', 'Last heartbeat'], pods.map((p) => {
      const providers = [...new Set(p.versions.map((v) => v.provider).filter(Boolean))];
      const budget = Number(p.memory_budget_bytes);
      return [
        h('strong', {}, p.name), h('code', {}, p.address), p.state,
        providers.length ? providers.join(', ') : '—',
        h('ul', { class: 'plain' }, ...p.versions.map((v) => h('li', { title: v.reason || undefined },
          `${v.model} v${v.version} ${v.state}${Number(v.memory_bytes) > 0 ? ` · ${bytes(Number(v.memory_bytes))}` : ''}${v.reason ? ` (${v.reason})` : ''}`))),
        budget > 0 ? `${bytes(Number(p.memory_used_bytes))} of ${bytes(budget)} (process ${bytes(Number(p.rss_bytes))})` : '—',
        String(p.inflight), when(p.seen_at),
      ];
    })) : h('p', {}, 'No pods announce themselves.'));
  };
  render((await api<{ pods: Pod[] }>('/api/pods')).pods);
  live('topics=pods', (kind, data) => kind === 'pods' && render((data as { pods: Pod[] }).pods), () => say(''), signal);
}

async function showEvents(signal: AbortSignal): Promise<void> {
  const params = new URLSearchParams(location.search);
  const filter = h('input', { id: 'event-model', type: 'search', value: params.get('model') ?? '', placeholder: 'model name' });
  const list = h('ol', { class: 'events', 'data-testid': 'events' });
  const matches = (e: MeshEvent) => !filter.value.trim() || e.model === filter.value.trim();
  const all: SequencedEvent[] = (await api<{ events: SequencedEvent[] }>('/api/events')).events;
  const render = () => list.replaceChildren(...all.filter((s) => matches(s.event)).slice(-300).reverse().map(eventRow));
  filter.addEventListener('input', () => {
    const url = new URL(location.href);
    if (filter.value.trim()) url.searchParams.set('model', filter.value.trim());
    else url.searchParams.delete('model');
    history.replaceState(null, '', url);
    render();
  });
  main.replaceChildren(h('h1', {}, 'Events'), h('p', {}, h('label', { for: 'event-model' }, 'Only the model '), filter), list);
  render();
  live('topics=event', (kind, data) => {
    if (kind !== 'event') return;
    const s = data as SequencedEvent;
    all.push(s);
    if (all.length > 1000) all.splice(0, all.length - 1000);
    if (matches(s.event)) list.prepend(eventRow(s));
  }, () => say(''), signal);
}

function showError(err: unknown): void {
  if (err instanceof ApiError && err.status === 401) {
    main.replaceChildren(h('h1', {}, 'A token is needed'), h('p', {}, 'This mesh checks who calls. Paste an API key (or JWT) with the read scope in the Token field above; actions need the rollout scope.'));
    say('');
    return;
  }
  say(`Error: ${err instanceof Error ? err.message : String(err)}`, true);
}

async function route(): Promise<void> {
  leaving.abort();
  leaving = new AbortController();
  const signal = leaving.signal;
  const p = location.pathname;
  for (const a of document.querySelectorAll('nav a')) {
    const href = a.getAttribute('href')!;
    if (p === href || (href === '/models' && (p === '/' || p.startsWith('/models/')))) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  try {
    const model = /^\/models\/([^/]+)$/.exec(p);
    if (model) await showModel(decodeURIComponent(model[1]!), signal);
    else if (p === '/pods') await showPods(signal);
    else if (p === '/events') await showEvents(signal);
    else await showModels(signal);
    document.title = `${document.querySelector('main h1')?.textContent ?? 'console'} · infermesh`;
  } catch (err) {
    showError(err);
  }
}

// Links within the console change the view without a reload.
document.addEventListener('click', (e) => {
  const a = (e.target as Element | null)?.closest('a');
  if (!a || a.origin !== location.origin || e.ctrlKey || e.metaKey || e.shiftKey || a.target) return;
  if (a.classList.contains('skip')) return;
  e.preventDefault();
  history.pushState(null, '', a.href);
  void route().then(() => main.focus());
});
window.addEventListener('popstate', () => void route());

const tokenForm = document.getElementById('token-form') as HTMLFormElement;
const tokenInput = document.getElementById('token') as HTMLInputElement;
const who = document.getElementById('who')!;
async function showWho(): Promise<void> {
  try {
    who.textContent = `as ${(await api<{ principal: string }>('/api/session')).principal}`;
  } catch {
    who.textContent = token() ? 'token refused' : '';
  }
}
tokenForm.addEventListener('submit', (e) => {
  e.preventDefault();
  if (tokenInput.value.trim()) sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim());
  else sessionStorage.removeItem(TOKEN_KEY);
  tokenInput.value = '';
  void showWho();
  void route();
});

void showWho();
void route();
