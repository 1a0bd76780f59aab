/**
 * Classic BPF socket filters (`SO_ATTACH_FILTER`) for fake TCP.
 *
 * - Capture filters for the raw sockets: a raw TCP socket gets a copy of every TCP packet to its
 *   address (on a busy host, all of them); the filter lets through only the flow's ports, so the
 *   kernel discards the rest before anything wakes up. An IPv4 raw socket's filter sees the
 *   packet from the IP header on; an IPv6 one's from the TCP header on.
 * - Filters for the kernel TCP sockets, which see the TCP header at offset 0: {@link noPayload}
 *   keeps the handshake but drops segments carrying data, and {@link dropAll} makes an
 *   established connection deaf, so the kernel never acknowledges, answers or resets anything
 *   the fake-TCP segments do to it (what tcpraw needs an iptables rule for).
 *
 * Program builders are pure; {@link attachFilter} does the `setsockopt`.
 *
 * @module
 */

import { addressOf, C, type Libc } from "../libc.ts";

/** One instruction: `{ u16 code; u8 jt; u8 jf; u32 k }`. */
export interface BpfInstruction {
  /** Opcode. */
  code: number;
  /** Jump offset if true. */
  jt: number;
  /** Jump offset if false. */
  jf: number;
  /** Constant operand. */
  k: number;
}

const LD_B_ABS = 0x30;
const LD_H_IND = 0x48;
const LD_W_LEN = 0x80;
const LDX_IMM = 0x01;
const LDX_B_MSH = 0xb1;
const ALU_RSH_K = 0x74;
const ALU_AND_K = 0x54;
const JEQ_K = 0x15;
const JGT_X = 0x2d;
const TAX = 0x07;
const RET_K = 0x06;

/** What accepting filters return: more bytes than any packet, so nothing is trimmed. */
const KEEP = 0x40000;

function op(code: number, k = 0, jt = 0, jf = 0): BpfInstruction {
  return { code, jt, jf, k };
}

/**
 * Accepts TCP packets with destination port `localPort` (and, when given, source port
 * `remotePort`); `ipv4` says whether the packet starts with an IPv4 header (IPv4 raw socket)
 * or with the TCP header (IPv6 raw socket).
 */
export function captureFilter(
  ipv4: boolean,
  localPort: number,
  remotePort?: number,
): BpfInstruction[] {
  const prog: BpfInstruction[] = [
    // X = where the TCP header starts
    ipv4 ? op(LDX_B_MSH, 0) : op(LDX_IMM, 0),
    op(LD_H_IND, 2),
  ];
  if (remotePort === undefined) {
    prog.push(op(JEQ_K, localPort, 0, 1));
  } else {
    prog.push(op(JEQ_K, localPort, 0, 3), op(LD_H_IND, 0), op(JEQ_K, remotePort, 0, 1));
  }
  prog.push(op(RET_K, KEEP), op(RET_K, 0));
  return prog;
}

/**
 * Accepts packets with `port` at either end (source or destination); the port fields of TCP and
 * UDP sit at the same offsets. For recording a conversation (tests, diagnostics).
 */
export function eitherPortFilter(ipv4: boolean, port: number): BpfInstruction[] {
  return [
    ipv4 ? op(LDX_B_MSH, 0) : op(LDX_IMM, 0),
    op(LD_H_IND, 0),
    op(JEQ_K, port, 2, 0),
    op(LD_H_IND, 2),
    op(JEQ_K, port, 0, 1),
    op(RET_K, KEEP),
    op(RET_K, 0),
  ];
}

/** For a kernel TCP socket: keeps segments without payload (the handshake), drops the rest. */
export function noPayload(): BpfInstruction[] {
  return [
    op(LD_B_ABS, 12), // data offset in the high nibble
    op(ALU_RSH_K, 2),
    op(ALU_AND_K, 0x3c), // header length in bytes
    op(TAX),
    op(LD_W_LEN),
    op(JGT_X, 0, 1, 0), // longer than its header: carries data
    op(RET_K, KEEP),
    op(RET_K, 0),
  ];
}

/** Drops everything. */
export function dropAll(): BpfInstruction[] {
  return [op(RET_K, 0)];
}

/** The program's bytes as the kernel reads them (`struct sock_filter[]`, host byte order). */
export function encodeProgram(prog: readonly BpfInstruction[]): Uint8Array {
  const out = new Uint8Array(new ArrayBuffer(prog.length * 8));
  const v = new DataView(out.buffer);
  prog.forEach((ins, i) => {
    v.setUint16(i * 8, ins.code, true);
    out[i * 8 + 2] = ins.jt;
    out[i * 8 + 3] = ins.jf;
    v.setUint32(i * 8 + 4, ins.k >>> 0, true);
  });
  return out;
}

/**
 * Runs a program over `packet` as the kernel would (the subset of opcodes used here), returning
 * the filter's verdict: 0 drops, anything else keeps. For tests.
 */
export function runFilter(prog: readonly BpfInstruction[], packet: Uint8Array): number {
  let a = 0, x = 0;
  for (let pc = 0; pc < prog.length; pc++) {
    const { code, k, jt, jf } = prog[pc];
    switch (code) {
      case LD_B_ABS:
        if (k >= packet.length) return 0;
        a = packet[k];
        break;
      case LD_H_IND:
        if (x + k + 2 > packet.length) return 0;
        a = (packet[x + k] << 8) | packet[x + k + 1];
        break;
      case LD_W_LEN:
        a = packet.length;
        break;
      case LDX_IMM:
        x = k;
        break;
      case LDX_B_MSH:
        if (k >= packet.length) return 0;
        x = (packet[k] & 0x0f) * 4;
        break;
      case ALU_RSH_K:
        a = a >>> k;
        break;
      case ALU_AND_K:
        a = a & k;
        break;
      case TAX:
        x = a;
        break;
      case JEQ_K:
        pc += a === k ? jt : jf;
        break;
      case JGT_X:
        pc += a > x ? jt : jf;
        break;
      case RET_K:
        return k;
      default:
        throw new Error(`runFilter: opcode 0x${code.toString(16)} not supported`);
    }
  }
  return 0;
}

/** Attaches `prog` to socket `fd`, replacing any filter; returns errno (0 on success). */
export function attachFilter(libc: Libc, fd: number, prog: readonly BpfInstruction[]): number {
  const code = encodeProgram(prog);
  // struct sock_fprog { unsigned short len; struct sock_filter *filter; } (LP64: 16 bytes)
  const fprog = new Uint8Array(new ArrayBuffer(16));
  const v = new DataView(fprog.buffer);
  v.setUint16(0, prog.length, true);
  const addr = addressOf(code);
  v.setUint32(8, addr % 0x100000000, true);
  v.setUint32(12, Math.floor(addr / 0x100000000), true);
  const rc = libc.symbols.setsockopt(fd, C.SOL_SOCKET, C.SO_ATTACH_FILTER, fprog, 16);
  const errno = rc < 0 ? libc.errno() : 0;
  void code.byteLength; // the kernel copied the program during the call; keep it alive until then
  return errno;
}
