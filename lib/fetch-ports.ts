// Ports that browsers and fetch() refuse to connect to: the Fetch standard's "bad ports"
// (https://fetch.spec.whatwg.org/#bad-port; Node's fetch refuses them with 'bad port'). A service's
// HTTP door (the router's REST port, the registry's console) on one serves curl and every other
// HTTP client, but no page and no fetch() can reach it, so the service says so when it listens.
import type { Logger } from './log';

const FETCH_BAD_PORTS: ReadonlySet<number> = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389,
  427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665,
  6666, 6667, 6668, 6669, 6679, 6697, 10080,
]);

/** Whether a browser or fetch() can reach `port`: it is not one of the Fetch standard's bad ports. */
export function fetchable(port: number): boolean {
  return !FETCH_BAD_PORTS.has(port);
}

/** The Fetch standard's bad ports from `from` to `to`, ascending. */
export function badPortsBetween(from: number, to: number): number[] {
  return [...FETCH_BAD_PORTS].filter((p) => p >= from && p <= to).sort((a, b) => a - b);
}

/** What to say of an HTTP door (`what`, e.g. 'the console') on `port` when browsers refuse that port; else undefined. */
export function refusedPortWarning(what: string, port: number | undefined): string | undefined {
  if (port === undefined || fetchable(port)) return undefined;
  return `${what} is on port ${port}, which browsers and fetch() refuse (a Fetch standard bad port): curl and other HTTP clients reach it, pages do not; choose another port`;
}

/** Warns on `log` when an HTTP door listens on a port browsers refuse (refusedPortWarning). */
export function warnIfUnfetchable(log: Logger, what: string, port: number | undefined): void {
  const warning = refusedPortWarning(what, port);
  if (warning) log.warn(warning, { port });
}
