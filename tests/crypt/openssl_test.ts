import { Cfb } from "../../transforms/crypt/cfb.ts";
import { deriveKey } from "../../transforms/crypt/key.ts";
import { OpenSslCfb } from "../../transforms/crypt/openssl.ts";
import { createBlockCipher } from "../../transforms/crypt/suite.ts";
import { PacketPool } from "../../pipeline/packet.ts";
import { assert, assertEquals } from "../support/assert.ts";

const pass = deriveKey("test");
const haveLibcrypto = OpenSslCfb.create("aes", pass) !== null;
if (!haveLibcrypto) {
  console.error("libcrypto.so.3 not loadable: the OpenSSL engine tests are skipped");
}

for (const method of ["aes", "aes-128", "aes-192"] as const) {
  Deno.test({
    name: `openssl cfb: ${method} gives the same bytes as our CFB, both ways, at any offset`,
    ignore: !haveLibcrypto,
    fn() {
      const ossl = OpenSslCfb.create(method, pass)!;
      assert(ossl !== null, `${method} not available from libcrypto`);
      const js = new Cfb(createBlockCipher(method, pass, "js")!);
      const pool = new PacketPool();
      let seed = 7;
      // Enough rounds for V8 to optimise the calls and run collections in between.
      for (let round = 0; round < 3000; round++) {
        const len = (seed = (seed * 1103515245 + 12345) >>> 0) % 1500;
        const p = pool.acquire();
        const at = p.prepend(0) - (round % 40);
        p.start = at;
        p.end = at + len;
        for (let i = p.start; i < p.end; i++) {
          p.buffer[i] = (seed = (seed * 69069 + 1) >>> 0) >>> 24;
        }
        const plain = p.buffer.slice(p.start, p.end);
        const want = plain.slice();
        js.encrypt(want, 0, want.length);
        ossl.encrypt(p.buffer, p.start, p.end);
        if (round % 97 === 0 || len < 20) assertEquals(p.buffer.slice(p.start, p.end), want);
        ossl.decrypt(p.buffer, p.start, p.end);
        assertEquals(p.buffer.slice(p.start, p.end), plain);
        p.release();
        if (round % 500 === 0) new Array(100000).fill({}); // garbage, to provoke collections
      }
    },
  });
}

Deno.test({
  name: "openssl cfb: only AES goes to libcrypto; other methods keep the JS path",
  ignore: !haveLibcrypto,
  fn() {
    for (
      const m of [
        "sm4",
        "3des",
        "blowfish",
        "cast5",
        "twofish",
        "tea",
        "xtea",
        "salsa20",
        "xor",
        "none",
      ]
    ) {
      assertEquals(OpenSslCfb.create(m, pass), null, m);
    }
  },
});
