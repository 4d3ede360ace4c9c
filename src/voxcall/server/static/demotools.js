// The client tools this page implements: one list gives the new-call form's default JSON,
// the help text under it, and the implementations registered on every call the page joins.
// Pure (no DOM): Node tests check that the three agree.

export const DEMO_TOOLS = [
  {
    name: "getWeather",
    description: "Get the current weather for a city.",
    summary: "fixed weather JSON",
    parameters: [{ name: "city", schema: { type: "string", description: "The city name" }, required: true }],
    run: ({ city } = {}) => JSON.stringify({ city: city || "unknown", temp_c: 13, condition: "drizzle" }),
  },
  {
    name: "getTime",
    description: "Get the current local time.",
    summary: "this browser's clock",
    parameters: [],
    run: () => JSON.stringify({ time: new Date().toLocaleTimeString() }),
  },
  {
    name: "rollDice",
    description: "Roll a die and say the number it shows.",
    summary: "a random number",
    parameters: [{ name: "sides", schema: { type: "integer", description: "How many sides the die has (default 6)" }, required: false }],
    run: ({ sides } = {}) => String(1 + Math.floor(Math.random() * (Number(sides) || 6))),
  },
];

/** The `selectedTools` entries (temporary client tools) that declare DEMO_TOOLS to the model. */
export function demoSelectedTools() {
  return DEMO_TOOLS.map((tool) => ({
    temporaryTool: {
      modelToolName: tool.name,
      description: tool.description,
      client: {},
      dynamicParameters: tool.parameters.map((p) => ({ name: p.name, location: "PARAMETER_LOCATION_BODY", schema: p.schema, required: p.required })),
    },
  }));
}

/** name -> implementation. */
export const DEMO_IMPLEMENTATIONS = Object.fromEntries(DEMO_TOOLS.map((tool) => [tool.name, tool.run]));

