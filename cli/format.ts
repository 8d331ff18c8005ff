// Units for people: sizes in decimal units (kB, MB, GB, as disks and networks count them), rates,
// durations and times, each in one short form used everywhere the CLI prints them.

/** 0 B, 999 B, 1.2 kB, 407.6 kB, 64.0 MB, 1.5 GB: one decimal from kB up. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '?';
  if (n < 1000) return `${Math.round(n)} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let u = 0;
  while (v >= 999.95 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

/** A rate in MB/s with one decimal (`45.2 MB/s`); '? MB/s' before any time has passed. */
export function formatRate(bytesPerSecond: number): string {
  if (!Number.isFinite(bytesPerSecond) || bytesPerSecond < 0) return '? MB/s';
  return `${(bytesPerSecond / 1e6).toFixed(1)} MB/s`;
}

/** A duration for people: `0.4 s`, `12 s`, `3m05s`, `2h10m`; '?' when unknown. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  // Each form is chosen by the value rounded to its own precision, so 9.96 s is `10 s`, not `10.0 s`,
  // and 59.6 s is `1m00s`, not `60 s`.
  const tenths = Math.round(ms / 100);
  if (tenths < 100) return `${(tenths / 10).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  const m = Math.round(ms / 60_000);
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** An RFC 3339 time as `2025-06-01 12:00:03Z` (UTC, to the second); '' stays '', junk as given. */
export function formatTime(rfc3339: string): string {
  if (!rfc3339) return '';
  const t = new Date(rfc3339);
  if (Number.isNaN(t.getTime())) return rfc3339;
  return `${t.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

/** A fraction 0..1 as a percent with one decimal: `99.2%`, `0.0%`. */
export function formatPercent(p: number): string {
  return `${(p * 100).toFixed(1)}%`;
}
