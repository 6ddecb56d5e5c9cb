// Reference renderer for the template conformance suite: Apache Velocity 1.7
// with its default settings, fed a JSON context read by gson and converted to
// plain java.util Maps/Lists (integers as Integer/Long, decimals as Double) so
// templates see the same types a JSON-reading Java service would hand them.
//
// Usage:
//   java VelocityDriver TEMPLATE.vm CONTEXT.json      render one file to stdout
//   java VelocityDriver --batch CASES.json RESULTS.json
// CASES.json is [{"name", "template", "context"}, ...]; RESULTS.json maps each
// name to {"output": "..."} or {"error": "..."}. Batch mode exists so the whole
// corpus costs one JVM start-up.

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import java.io.IOException;
import java.io.StringWriter;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.velocity.VelocityContext;
import org.apache.velocity.app.VelocityEngine;

public final class VelocityDriver {
    private VelocityDriver() {}

    public static void main(String[] args) throws Exception {
        if (args.length == 3 && args[0].equals("--batch")) {
            batch(args[1], args[2]);
        } else if (args.length == 2) {
            single(args[0], args[1]);
        } else {
            System.err.println("usage: VelocityDriver TEMPLATE CONTEXT | --batch CASES RESULTS");
            System.exit(2);
        }
    }

    private static void single(String templatePath, String contextPath) throws IOException {
        String template = read(templatePath);
        JsonElement context = JsonParser.parseString(read(contextPath));
        try {
            System.out.print(render(template, context.getAsJsonObject(), "template"));
            System.out.flush();
        } catch (Exception e) {
            System.err.println(e.getClass().getSimpleName() + ": " + e.getMessage());
            System.exit(1);
        }
    }

    private static void batch(String casesPath, String resultsPath) throws IOException {
        JsonArray cases = JsonParser.parseString(read(casesPath)).getAsJsonArray();
        JsonObject results = new JsonObject();
        for (JsonElement element : cases) {
            JsonObject testCase = element.getAsJsonObject();
            String name = testCase.get("name").getAsString();
            JsonObject result = new JsonObject();
            try {
                String output = render(
                    testCase.get("template").getAsString(),
                    testCase.get("context").getAsJsonObject(),
                    name);
                result.addProperty("output", output);
            } catch (Exception e) {
                result.addProperty("error", e.getClass().getSimpleName() + ": " + e.getMessage());
            }
            results.add(name, result);
        }
        Gson gson = new GsonBuilder().disableHtmlEscaping().serializeNulls().create();
        Files.write(Paths.get(resultsPath), gson.toJson(results).getBytes(StandardCharsets.UTF_8));
    }

    // A fresh engine per template keeps inline #macro definitions, which
    // Velocity 1.7 registers engine-wide, from leaking between cases.
    private static String render(String template, JsonObject context, String name) throws Exception {
        VelocityEngine engine = new VelocityEngine();
        engine.setProperty("runtime.log.logsystem.class",
            "org.apache.velocity.runtime.log.NullLogChute");
        engine.init();
        VelocityContext velocityContext = new VelocityContext();
        for (Map.Entry<String, JsonElement> entry : context.entrySet()) {
            velocityContext.put(entry.getKey(), toJava(entry.getValue()));
        }
        StringWriter writer = new StringWriter();
        engine.evaluate(velocityContext, writer, name, template);
        return writer.toString();
    }

    private static Object toJava(JsonElement element) {
        if (element == null || element.isJsonNull()) {
            return null;
        }
        if (element.isJsonObject()) {
            Map<String, Object> map = new LinkedHashMap<>();
            for (Map.Entry<String, JsonElement> entry : element.getAsJsonObject().entrySet()) {
                map.put(entry.getKey(), toJava(entry.getValue()));
            }
            return map;
        }
        if (element.isJsonArray()) {
            List<Object> list = new ArrayList<>();
            for (JsonElement item : element.getAsJsonArray()) {
                list.add(toJava(item));
            }
            return list;
        }
        JsonPrimitive primitive = element.getAsJsonPrimitive();
        if (primitive.isBoolean()) {
            return primitive.getAsBoolean();
        }
        if (primitive.isNumber()) {
            return toNumber(primitive.getAsString());
        }
        return primitive.getAsString();
    }

    private static Object toNumber(String text) {
        if (text.contains(".") || text.contains("e") || text.contains("E")) {
            return Double.valueOf(text);
        }
        BigInteger value = new BigInteger(text);
        if (value.bitLength() < 32) {
            return value.intValue();
        }
        if (value.bitLength() < 64) {
            return value.longValue();
        }
        return value;
    }

    private static String read(String path) throws IOException {
        return new String(Files.readAllBytes(Paths.get(path)), StandardCharsets.UTF_8);
    }
}
