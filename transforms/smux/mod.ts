/**
 * smux (kcptun's stream multiplexer), versions 1 and 2: the frame codec, the sans-IO session
 * core and the `smux` stage. The runtime's connection (`runtime/connection.ts`) runs sessions.
 *
 * @module
 */

export { KCPTUN_2021_SMUX, SMUX_DEFAULTS, type SmuxConfig, smuxConfig } from "./config.ts";
export {
  CMD_FIN,
  CMD_NOP,
  CMD_PSH,
  CMD_SYN,
  CMD_UPD,
  encodeFrame,
  encodeUpd,
  HEADER_SIZE,
  INITIAL_PEER_WINDOW,
  MAX_PAYLOAD,
  parseFrames,
  type SmuxFrame,
  SmuxFrameParser,
  UPD_SIZE,
} from "./frame.ts";
export { type SmuxRole, SmuxSession, type SmuxStats } from "./session.ts";
export { smuxOptions, smuxStage, type SmuxStageInstance } from "./stage.ts";
