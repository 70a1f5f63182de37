// Drives the official `openai` npm client against the Backline AI proxy (tests/ai/test_sdk_js.py).
// Usage: node sdk_check.cjs <scenario>; env SDK_DIR (where package.json's deps are installed),
// BASE_URL, TOKEN, MODEL. Prints one JSON object with what the client saw.
const path = require("node:path");
const { createRequire } = require("node:module");
const load = createRequire(path.join(process.env.SDK_DIR, "package.json"));
const { OpenAI } = load("openai");

const client = new OpenAI({ baseURL: process.env.BASE_URL, apiKey: process.env.TOKEN, maxRetries: 0 });
const model = process.env.MODEL;
const messages = [{ role: "user", content: "hi" }];
const tools = [
  {
    type: "function",
    function: {
      name: "get_weather",
      parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
    },
  },
];

async function happy() {
  const chat = await client.chat.completions.create({ model, messages });
  let streamed = "";
  let usage = null;
  const stream = await client.chat.completions.create({
    model, messages, stream: true, stream_options: { include_usage: true },
  });
  for await (const chunk of stream) {
    if (chunk.choices.length) streamed += chunk.choices[0].delta.content || "";
    if (chunk.usage) usage = chunk.usage;
  }
  const tool = await client.chat.completions.create({ model, messages, tools });
  const runner = client.chat.completions.stream({ model, messages, tools, tool_choice: "required" });
  const toolStreamed = await runner.finalChatCompletion();
  const structured = await client.chat.completions.create({
    model,
    messages,
    response_format: {
      type: "json_schema",
      json_schema: { name: "person", schema: { type: "object", properties: { name: { type: "string" } } } },
    },
  });
  return {
    chat: chat.choices[0].message.content,
    streamed,
    usage,
    tool: tool.choices[0].message.tool_calls[0].function,
    tool_finish: tool.choices[0].finish_reason,
    tool_streamed: toolStreamed.choices[0].message.tool_calls[0].function,
    structured: JSON.parse(structured.choices[0].message.content),
  };
}

async function refused() {
  try {
    await client.chat.completions.create({ model, messages });
    return { error: null };
  } catch (err) {
    return {
      error: err.constructor.name,
      rate_limit: err instanceof OpenAI.RateLimitError,
      status: err.status,
      code: err.code,
      type: err.type,
      retry_after: err.headers ? err.headers.get("retry-after") : null,
    };
  }
}

const scenarios = { happy, refused };
scenarios[process.argv[2]]().then(
  (out) => process.stdout.write(JSON.stringify(out)),
  (err) => {
    process.stderr.write(String(err && err.stack ? err.stack : err));
    process.exit(1);
  },
);
