#!/usr/bin/env node
// Send tasks to the Agent Fleet from Node.js: a raw Celery protocol v2 message pushed to Redis.
//
//   node producer.js --broker redis://127.0.0.1:6379/0 --task fleet.ping --queue ledger \
//       --priority 0 --correlation-id my-id --wait 30
//   node producer.js --task ledger.quick_run --queue ledger --priority 3 \
//       --args '[{"event_id": "evt-1", "event_type": "account_opened", ...}]' --wait 30
//
// --args is a JSON array of positional arguments and may be repeated: one message per --args.
// Prints one JSON line per message: {"task_id", "list", "status", "result"}.
//
// Message layout (kombu's Redis transport, Celery task protocol v2):
//   LPUSH <list> <envelope JSON>, where <list> is the queue name for priority 0 and
//   "<queue>:<priority>" otherwise (the fleet's transport options: priority_steps 0-9, sep ":").
//   Workers BRPOP the lists of their queues, most urgent (0) first.
//   envelope = {"body": base64(JSON [args, kwargs, embed]), "content-type": "application/json",
//               "content-encoding": "utf-8", "headers": {task, id, root_id, ..., x_correlation_id},
//               "properties": {correlation_id, delivery_info: {exchange, routing_key}, priority,
//                              body_encoding: "base64", delivery_tag, delivery_mode: 2}}
//   The result (result backend = the broker) is the JSON string at "celery-task-meta-<id>".
"use strict";

const crypto = require("node:crypto");
const os = require("node:os");
const { parseArgs } = require("node:util");
const { createClient } = require("redis");

const PRIORITY_SEP = ":"; // the fleet's broker_transport_options "sep"

function listFor(queue, priority) {
  // kombu's _q_for_pri: priority 0 is the bare queue name, any other the name + sep + priority.
  return priority ? `${queue}${PRIORITY_SEP}${priority}` : queue;
}

function envelope(task, args, queue, priority, correlationId) {
  const id = crypto.randomUUID();
  const embed = { callbacks: null, errbacks: null, chain: null, chord: null };
  const body = Buffer.from(JSON.stringify([args, {}, embed]), "utf-8").toString("base64");
  return {
    id,
    message: {
      body,
      "content-encoding": "utf-8",
      "content-type": "application/json",
      headers: {
        lang: "js",
        task,
        id,
        shadow: null,
        eta: null,
        expires: null,
        group: null,
        group_index: null,
        retries: 0,
        timelimit: [null, null],
        root_id: id,
        parent_id: null,
        argsrepr: JSON.stringify(args),
        kwargsrepr: "{}",
        origin: `node@${os.hostname()}`,
        ignore_result: false,
        // The fleet's correlation header: carried by every task of the work this message starts.
        x_correlation_id: correlationId,
      },
      properties: {
        correlation_id: id,
        reply_to: "",
        delivery_mode: 2,
        delivery_info: { exchange: "", routing_key: queue },
        priority,
        body_encoding: "base64",
        delivery_tag: crypto.randomUUID(),
      },
    },
  };
}

async function waitForResult(client, id, seconds) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    const raw = await client.get(`celery-task-meta-${id}`);
    if (raw) {
      const meta = JSON.parse(raw);
      if (["SUCCESS", "FAILURE", "REVOKED"].includes(meta.status)) return meta;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { status: "TIMEOUT", result: null };
}

async function main() {
  const { values } = parseArgs({
    options: {
      broker: { type: "string", default: process.env.FLEET_BROKER_URL || "redis://127.0.0.1:6379/0" },
      task: { type: "string", default: "fleet.ping" },
      queue: { type: "string", default: "agents" },
      priority: { type: "string", default: "5" },
      "correlation-id": { type: "string", default: crypto.randomUUID() },
      args: { type: "string", multiple: true },
      wait: { type: "string", default: "0" },
    },
  });
  const priority = Number.parseInt(values.priority, 10);
  if (!(priority >= 0 && priority <= 9)) throw new Error("--priority must be 0-9 (0 most urgent)");
  const client = createClient({ url: values.broker });
  await client.connect();
  try {
    const sent = [];
    for (const raw of values.args || ["[]"]) {
      const args = JSON.parse(raw);
      if (!Array.isArray(args)) throw new Error("--args must be a JSON array of positional arguments");
      const { id, message } = envelope(values.task, args, values.queue, priority, values["correlation-id"]);
      const list = listFor(values.queue, priority);
      await client.lPush(list, JSON.stringify(message));
      sent.push({ id, list });
    }
    for (const { id, list } of sent) {
      const wait = Number.parseFloat(values.wait);
      const meta = wait > 0 ? await waitForResult(client, id, wait) : { status: "SENT", result: null };
      process.stdout.write(`${JSON.stringify({ task_id: id, list, status: meta.status, result: meta.result })}\n`);
    }
  } finally {
    await client.quit();
  }
}

main().catch((error) => {
  process.stderr.write(`error: ${error.message}\n`);
  process.exit(1);
});
