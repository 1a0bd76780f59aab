import { assert, assertEquals } from "../support/assert.ts";
import {
  formatGoTime,
  type GoTime,
  goTimeFixed,
  goTimeLocal,
  goTimeUTC,
} from "../../cli/go_time.ts";

// Go's reference time: Mon Jan 2 15:04:05 MST 2006 (-0700).
const REF = goTimeFixed(new Date(Date.UTC(2006, 0, 2, 22, 4, 5, 123)), -7 * 3600, "MST");

Deno.test("go time: the reference time formats to itself", () => {
  assertEquals(formatGoTime("Mon Jan 2 15:04:05 MST 2006", REF), "Mon Jan 2 15:04:05 MST 2006");
  assertEquals(formatGoTime("01/02 03:04:05PM '06 -0700", REF), "01/02 03:04:05PM '06 -0700");
  assertEquals(formatGoTime("2006-01-02T15:04:05Z07:00", REF), "2006-01-02T15:04:05-07:00");
  assertEquals(
    formatGoTime("Monday, 02-Jan-06 15:04:05 MST", REF),
    "Monday, 02-Jan-06 15:04:05 MST",
  );
  assertEquals(formatGoTime("Mon Jan _2 15:04:05 2006", REF), "Mon Jan  2 15:04:05 2006");
  assertEquals(formatGoTime("3:04PM", REF), "3:04PM");
  assertEquals(formatGoTime("Jan _2 15:04:05.000", REF), "Jan  2 15:04:05.123");
  assertEquals(formatGoTime("15:04:05,000000", REF), "15:04:05,123000");
  assertEquals(formatGoTime("15:04:05.999999999", REF), "15:04:05.123");
  assertEquals(formatGoTime("January 002 __2", REF), "January 002   2");
  assertEquals(formatGoTime("snmp-20060102.log", REF), "snmp-20060102.log");
});

Deno.test("go time: golden file names written by kcptun 2021 in three zones", () => {
  // kcptun-client -snmplog "<dir>/<layout>" -snmpperiod 1, under TZ=UTC, Asia/Kolkata and
  // America/St_Johns; the CSV's Unix column gives the instant.
  const layout =
    "a2006-06-January-Jan-01-1-Monday-Mon-02-_2-2-002-__2-15-03-3-04-4-05-5-PM-pm-MST-Z0700-Z07:00-Z07-Z070000-Z07:00:00--0700--07:00--07--070000--07:00:00-Janet-Month-_2006.csv";
  const cases: [number, number, string, string][] = [
    [
      1795633106,
      0,
      "UTC",
      "a2026-26-November-Nov-11-11-Wednesday-Wed-25-25-25-329-329-18-06-6-58-58-26-26-PM-pm-UTC-Z-Z-Z-Z-Z-+0000-+00:00-+00-+000000-+00:00:00-Janet-Month-_2026.csv",
    ],
    [
      1795633109,
      19800,
      "IST",
      "a2026-26-November-Nov-11-11-Thursday-Thu-26-26-26-330-330-00-12-12-28-28-29-29-AM-am-IST-+0530-+05:30-+05-+053000-+05:30:00-+0530-+05:30-+05-+053000-+05:30:00-Janet-Month-_2026.csv",
    ],
    [
      1795633111,
      -12600,
      "NST",
      "a2026-26-November-Nov-11-11-Wednesday-Wed-25-25-25-329-329-15-03-3-28-28-31-31-PM-pm-NST--0330--03:30--03--033000--03:30:00--0330--03:30--03--033000--03:30:00-Janet-Month-_2026.csv",
    ],
  ];
  for (const [unix, offset, zone, expected] of cases) {
    assertEquals(
      formatGoTime(layout, goTimeFixed(new Date(unix * 1000), offset, zone)),
      expected,
      zone,
    );
  }
});

Deno.test("go time: padding, 12-hour clock, fractions and edge tokens", () => {
  const t = goTimeUTC(new Date(Date.UTC(2009, 2, 7, 0, 9, 3, 50)));
  assertEquals(
    formatGoTime("_2|2|02|1|01|__2|002|3|03|15|4|04|5|05|PM|pm", t),
    " 7|7|07|3|03| 66|066|12|12|00|9|09|3|03|AM|am",
  );
  assertEquals(formatGoTime(".0|.00|.9|.99|.999|.9999|,9", t), ".0|.05||.05|.05|.05|");
  assertEquals(formatGoTime(".0000000000", t), ".050000000");
  assertEquals(formatGoTime("x.0y", t), "x.0y");
  // A digit run that does not end is no fraction: ".01" is "." then month "01".
  assertEquals(formatGoTime(".01", t), ".03");
  const noon = goTimeUTC(new Date(Date.UTC(2009, 0, 1, 12, 0, 0)));
  assertEquals(formatGoTime("3PM 03pm __2", noon), "12PM 12pm   1");
  const late = goTimeUTC(new Date(Date.UTC(2009, 11, 31, 23, 0, 0)));
  assertEquals(formatGoTime("002 __2 3", late), "365 365 11");
  // "Jan"/"Mon" followed by a lower-case letter are text; "MST" needs no boundary.
  assertEquals(formatGoTime("Janx Monx JanX MSTx", t), "Janx Monx MarX UTCx");
  // Zone without a name prints its offset; a zero offset prints Z only in the Z forms.
  const anon: GoTime = { ...t, offsetSeconds: 3600 + 1800, zoneName: "" };
  assertEquals(formatGoTime("MST Z07 -07", anon), "+0130 +01 +01");
  assertEquals(formatGoTime("Z07:00 -07:00", t), "Z +00:00");
  // Plain text passes through; "_" alone is text.
  assertEquals(formatGoTime("snmp_log-x.csv", t), "snmp_log-x.csv");
  assertEquals(formatGoTime("", t), "");
  const y6 = goTimeUTC(new Date(Date.UTC(2000, 0, 1)));
  assertEquals(formatGoTime("2006|06", { ...y6, year: 6 }), "0006|06");
  assertEquals(formatGoTime("2006|06", { ...y6, year: -33 }), "-0033|33");
});

Deno.test("go time: local time matches Date's local fields", () => {
  const d = new Date(Date.UTC(2026, 10, 24, 13, 5, 9));
  const t = goTimeLocal(d);
  assertEquals([t.year, t.month, t.day, t.hour, t.minute, t.second], [
    d.getFullYear(),
    d.getMonth() + 1,
    d.getDate(),
    d.getHours(),
    d.getMinutes(),
    d.getSeconds(),
  ]);
  assertEquals(t.offsetSeconds, -d.getTimezoneOffset() * 60);
  assert(t.zoneName !== "", "a zone name");
});
