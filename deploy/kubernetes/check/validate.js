// Offline check of Kubernetes manifests, without a cluster or kubectl
// (scripts/check-manifests.sh). Every document of every file given is checked
// twice, against the Kubernetes API's own schemas as two npm packages carry
// them:
//  - kubernetes-models: the OpenAPI schema compiled to validators (types,
//    required fields, enums, formats);
//  - @kubernetes/client-node: each type's attribute list, to find fields the
//    API does not have (a misspelt or misplaced key, which the API server
//    would drop or refuse, and which the first check lets through).
// A kustomization.yaml is checked for the files it lists. Prints each
// problem as file: kind/name: path: what, and exits 1 if there was one.
'use strict';
const fs = require('fs');
const path = require('path');
const yaml = require('js-yaml');
const k8s = require('@kubernetes/client-node');

const problems = [];
const problem = (where, what) => problems.push(`${where}: ${what}`);

// "apps/v1" + "Deployment" -> the kubernetes-models class, or null.
function modelClass(apiVersion, kind) {
  try {
    // "v1" is the core group's folder; the others are "group/version".
    return require(`kubernetes-models/${apiVersion}/${kind}`)[kind];
  } catch (e) {
    return null;
  }
}

// The client-node type of a top-level object: "V1" + kind for the v1 APIs.
function topType(apiVersion, kind) {
  const version = apiVersion.split('/').pop();
  const name = version.charAt(0).toUpperCase() + version.slice(1) + kind;
  return k8s[name] && k8s[name].getAttributeTypeMap ? name : null;
}

// Walks `value` as client-node type `type`: every key must be an attribute.
function walk(value, type, where) {
  if (value === null || value === undefined) return;
  let m;
  if ((m = /^Array<(.+)>$/.exec(type))) {
    if (!Array.isArray(value)) return problem(where, `should be a list (${type})`);
    value.forEach((v, i) => walk(v, m[1], `${where}[${i}]`));
    return;
  }
  if ((m = /^\{ \[key: string\]: (.+); \}$/.exec(type))) {
    if (typeof value !== 'object' || Array.isArray(value)) return problem(where, 'should be a map');
    for (const [k, v] of Object.entries(value)) walk(v, m[1], `${where}.${k}`);
    return;
  }
  const cls = k8s[type];
  if (!cls || !cls.getAttributeTypeMap) return;  // a scalar, IntOrString or free-form object
  if (typeof value !== 'object' || Array.isArray(value)) {
    return problem(where, `should be an object (${type})`);
  }
  const attrs = new Map(cls.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    if (!attrs.has(k)) {
      problem(`${where}.${k}`, `no such field in ${type} (one of: ${[...attrs.keys()].join(', ')})`);
    } else {
      walk(v, attrs.get(k), `${where}.${k}`);
    }
  }
}

function checkDoc(file, doc, index) {
  const id = `${path.basename(file)}#${index}`;
  if (!doc || typeof doc !== 'object') return problem(id, 'not an object');
  const { apiVersion, kind } = doc;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
    return problem(id, 'apiVersion and kind are required');
  }
  const name = (doc.metadata && doc.metadata.name) || '?';
  const where = `${path.basename(file)}: ${kind}/${name}`;
  if (kind === 'Kustomization') {
    for (const r of doc.resources || []) {
      if (!fs.existsSync(path.join(path.dirname(file), r))) problem(where, `resource ${r} not found`);
    }
    return;
  }
  const Model = modelClass(apiVersion, kind);
  const type = topType(apiVersion, kind);
  if (!Model || !type) return problem(where, `unknown kind ${apiVersion} ${kind}`);
  try {
    new Model(doc).validate();
  } catch (e) {
    problem(where, e.message.replace(/\s+/g, ' '));
  }
  walk(doc, type, where);
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node validate.js FILE.yaml...');
  process.exit(2);
}
let docs = 0;
for (const file of files) {
  let parsed;
  try {
    parsed = yaml.loadAll(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    problem(path.basename(file), `not YAML: ${e.message}`);
    continue;
  }
  parsed.forEach((doc, i) => {
    if (doc === null) return;  // an empty document (a trailing ---)
    docs += 1;
    checkDoc(file, doc, i);
  });
}
for (const p of problems) console.log(p);
console.log(`${docs} documents in ${files.length} files: ${problems.length} problems`);
process.exit(problems.length ? 1 : 0);
