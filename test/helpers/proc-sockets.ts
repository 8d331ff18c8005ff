// What a process listens on, read from Linux's /proc: its file descriptors name socket inodes
// (/proc/<pid>/fd/N -> socket:[inode]), and the kernel's socket tables (/proc/<pid>/net/tcp, tcp6,
// unix) say which of those inodes listen, and where. The tables are the whole network
// namespace's, so only the process's own inodes are kept.
import fs from 'node:fs';

/** The listening sockets of one process. */
export interface Listeners {
  /** TCP ports it listens on (IPv4 and IPv6), ascending. */
  tcpPorts: number[];
  /** Paths of the Unix domain sockets it listens on. */
  unixPaths: string[];
}

/** TCP state LISTEN in /proc/net/tcp (include/net/tcp_states.h). */
const TCP_LISTEN = '0A';
/** __SO_ACCEPTCON in /proc/net/unix's Flags: a socket that listen() was called on. */
const SO_ACCEPTCON = 0x10000;

function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed while read
    }
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m) inodes.add(m[1]!);
  }
  return inodes;
}

function tableRows(file: string): string[][] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return []; // no IPv6 in this kernel
  }
  return text.split('\n').slice(1).filter(Boolean).map((line) => line.trim().split(/\s+/));
}

/** The listening sockets of `pid` (Linux only). */
export function listenersOf(pid: number): Listeners {
  const inodes = socketInodes(pid);
  const tcpPorts = new Set<number>();
  for (const table of ['tcp', 'tcp6']) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    for (const row of tableRows(`/proc/${pid}/net/${table}`)) {
      if (row[3] === TCP_LISTEN && inodes.has(row[9] ?? '')) tcpPorts.add(parseInt(row[1]!.split(':')[1]!, 16));
    }
  }
  const unixPaths: string[] = [];
  // Num RefCount Protocol Flags Type St Inode Path
  for (const row of tableRows(`/proc/${pid}/net/unix`)) {
    if (row.length >= 8 && (parseInt(row[3]!, 16) & SO_ACCEPTCON) !== 0 && inodes.has(row[6]!)) unixPaths.push(row.slice(7).join(' '));
  }
  return { tcpPorts: [...tcpPorts].sort((a, b) => a - b), unixPaths };
}
