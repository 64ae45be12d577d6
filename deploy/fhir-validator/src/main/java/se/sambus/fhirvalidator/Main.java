package se.sambus.fhirvalidator;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.parser.DataFormatException;
import ca.uhn.fhir.parser.IParser;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import ca.uhn.fhir.validation.SingleValidationMessage;
import ca.uhn.fhir.validation.ValidationResult;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.PrePopulatedValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;
import org.hl7.fhir.instance.model.api.IBaseResource;
import org.hl7.fhir.r4.model.MessageDefinition;

/**
 * Validates FHIR R4 resources (typically message Bundles) offline, in one JVM.
 *
 * <p>Usage: {@code Main [--conformance DIR]... PATH...}. Every PATH is a JSON file or a directory of them
 * (searched recursively); a file holds one resource or a JSON array of resources. Conformance directories hold
 * StructureDefinitions, CodeSystems, ValueSets, NamingSystems and MessageDefinitions as JSON; the resources are
 * checked against base R4 plus those. A message Bundle whose event has a MessageDefinition is also checked against
 * it (see {@link MessageDefinitions}).
 *
 * <p>Prints one JSON line per file: {@code {"file", "resources", "errors", "warnings", "issues": [{"severity",
 * "resource", "location", "message", "id"}]}}. Exits 1 when any file has an error, 2 on wrong usage or unreadable
 * conformance resources.
 */
public final class Main {
  private static final ObjectMapper JSON = new ObjectMapper();

  private Main() {}

  public static void main(String[] args) throws IOException {
    List<Path> conformance = new ArrayList<>();
    List<Path> inputs = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      if (args[i].equals("--conformance") && i + 1 < args.length) {
        conformance.add(Path.of(args[++i]));
      } else if (args[i].startsWith("--")) {
        usage("unknown option " + args[i]);
      } else {
        inputs.add(Path.of(args[i]));
      }
    }
    if (inputs.isEmpty()) {
      usage("no file or directory to validate");
    }
    PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
    FhirContext context = FhirContext.forR4();
    IParser parser = context.newJsonParser();
    PrePopulatedValidationSupport own = new PrePopulatedValidationSupport(context);
    List<IBaseResource> loaded = new ArrayList<>();
    for (Path directory : conformance) {
      for (Path file : jsonFiles(directory)) {
        for (JsonNode node : resourcesIn(file)) {
          IBaseResource resource;
          try {
            resource = parser.parseResource(node.toString());
          } catch (DataFormatException exc) {
            System.err.println("error: " + file + " is not a FHIR resource: " + exc.getMessage());
            System.exit(2);
            return;
          }
          own.addResource(resource);
          loaded.add(resource);
        }
      }
    }
    ValidationSupportChain chain =
        new ValidationSupportChain(
            own,
            new DefaultProfileValidationSupport(context),
            new InMemoryTerminologyServerValidationSupport(context),
            new CommonCodeSystemsTerminologyService(context),
            new SnapshotGeneratingValidationSupport(context));
    FhirInstanceValidator module = new FhirInstanceValidator(chain);
    module.setErrorForUnknownProfiles(true);
    FhirValidator validator = context.newValidator();
    validator.registerValidatorModule(module);
    MessageDefinitions messages = new MessageDefinitions(filter(loaded, MessageDefinition.class));

    boolean anyError = false;
    for (Path input : inputs) {
      for (Path file : jsonFiles(input)) {
        ObjectNode line = JSON.createObjectNode();
        line.put("file", file.toString());
        ArrayNode issues = line.putArray("issues");
        int errors = 0;
        int warnings = 0;
        List<JsonNode> resources = resourcesIn(file);
        if (resources.isEmpty()) {
          errors++;
          ObjectNode issue = issues.addObject();
          issue.put("severity", "error");
          issue.put("message", "no FHIR resource in this file");
        }
        for (int index = 0; index < resources.size(); index++) {
          List<SingleValidationMessage> found = new ArrayList<>();
          JsonNode resource = resources.get(index);
          found.addAll(messages.check(resource));
          ValidationResult result = validator.validateWithResult(messages.withFocusProfiles(resource).toString());
          found.addAll(result.getMessages());
          for (SingleValidationMessage message : found) {
            ResultSeverityEnum severity = message.getSeverity();
            if (severity == ResultSeverityEnum.INFORMATION) {
              continue;
            }
            if (severity == ResultSeverityEnum.ERROR || severity == ResultSeverityEnum.FATAL) {
              errors++;
            } else {
              warnings++;
            }
            ObjectNode issue = issues.addObject();
            issue.put("severity", severity.getCode());
            issue.put("resource", index);
            issue.put("location", message.getLocationString());
            issue.put("message", message.getMessage());
            issue.put("id", message.getMessageId());
          }
        }
        line.put("resources", resources.size());
        line.put("errors", errors);
        line.put("warnings", warnings);
        anyError |= errors > 0;
        out.println(JSON.writeValueAsString(line));
        out.flush();
      }
    }
    System.exit(anyError ? 1 : 0);
  }

  private static void usage(String problem) {
    System.err.println("error: " + problem);
    System.err.println("usage: validate.sh [--conformance DIR]... FILE_OR_DIR...");
    System.exit(2);
  }

  static List<Path> jsonFiles(Path path) throws IOException {
    if (!Files.isDirectory(path)) {
      return List.of(path);
    }
    try (Stream<Path> walk = Files.walk(path)) {
      return walk.filter(p -> Files.isRegularFile(p) && p.toString().endsWith(".json")).sorted().toList();
    }
  }

  /** The resources in a file: the object itself, or each element of a top-level array. */
  static List<JsonNode> resourcesIn(Path file) throws IOException {
    JsonNode root = JSON.readTree(file.toFile());
    List<JsonNode> resources = new ArrayList<>();
    if (root != null && root.isArray()) {
      root.forEach(resources::add);
    } else if (root != null && root.isObject() && root.has("resourceType")) {
      resources.add(root);
    }
    return resources;
  }

  static <T> List<T> filter(List<IBaseResource> resources, Class<T> type) {
    return resources.stream().filter(type::isInstance).map(type::cast).toList();
  }
}
