// rmon-console's browser tests. Run by scripts/console-test.sh, which starts
// the stack, the console and a workload and sets the environment below.
// Debian's chromium (the browser download is not reachable here).
const { defineConfig } = require("@playwright/test");

module.exports = defineConfig({
  testDir: ".",
  testMatch: /.*\.spec\.js/,
  timeout: 60_000,
  expect: { timeout: 5_000 },
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  outputDir: process.env.PW_OUTPUT_DIR || "test-results",
  grep: process.env.SECURE === "1" ? /@secure/ : undefined,
  use: {
    baseURL: process.env.CONSOLE_URL,
    viewport: { width: 1366, height: 900 },  // a laptop's screen
    launchOptions: { executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
                     args: ["--no-sandbox"] },
    trace: "retain-on-failure",
  },
});
