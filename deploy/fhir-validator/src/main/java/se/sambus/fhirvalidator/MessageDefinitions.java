package se.sambus.fhirvalidator;

import ca.uhn.fhir.validation.ResultSeverityEnum;
import ca.uhn.fhir.validation.SingleValidationMessage;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.hl7.fhir.r4.model.MessageDefinition;
import org.hl7.fhir.r4.model.MessageDefinition.MessageDefinitionFocusComponent;

/**
 * Checks message Bundles against the MessageDefinition of their event, which HAPI's instance validator does not.
 *
 * <p>For a Bundle of type {@code message} whose {@code MessageHeader.eventCoding} system has MessageDefinitions:
 * the event must have one; the focal resources' types and counts must match its {@code focus} list; a
 * {@code MessageHeader.definition} must name it. {@link #withFocusProfiles} claims each focus's profile in the
 * focal resource's {@code meta.profile}, so that the instance validator checks the focal resources against their
 * profiles in the context of the Bundle.
 */
final class MessageDefinitions {
  private static final String ID = "sambus-message-definition";
  private final Map<String, MessageDefinition> byEvent = new HashMap<>();
  private final Set<String> eventSystems = new HashSet<>();

  MessageDefinitions(List<MessageDefinition> definitions) {
    for (MessageDefinition definition : definitions) {
      if (definition.hasEventCoding()) {
        String system = definition.getEventCoding().getSystem();
        eventSystems.add(system);
        byEvent.put(system + "|" + definition.getEventCoding().getCode(), definition);
      }
    }
  }

  List<SingleValidationMessage> check(JsonNode bundle) {
    List<SingleValidationMessage> problems = new ArrayList<>();
    JsonNode header = header(bundle);
    if (header == null) {
      return problems;
    }
    String system = header.path("eventCoding").path("system").asText();
    String code = header.path("eventCoding").path("code").asText();
    if (!eventSystems.contains(system)) {
      return problems;
    }
    MessageDefinition definition = byEvent.get(system + "|" + code);
    String where = "Bundle.entry[0].resource.ofType(MessageHeader)";
    if (definition == null) {
      problems.add(error(where + ".eventCoding", "no MessageDefinition for the event " + system + "|" + code));
      return problems;
    }
    String claimed = header.path("definition").asText("");
    if (!claimed.isEmpty() && !claimed.equals(definition.getUrl())
        && !claimed.equals(definition.getUrl() + "|" + definition.getVersion())) {
      problems.add(error(where + ".definition", "MessageHeader.definition " + claimed
          + " is not the MessageDefinition of the event " + code + " (" + definition.getUrl() + ")"));
    }
    Map<String, Integer> counts = new LinkedHashMap<>();
    Map<String, JsonNode> entries = entriesByFullUrl(bundle);
    JsonNode focus = header.path("focus");
    for (int i = 0; i < focus.size(); i++) {
      String reference = focus.get(i).path("reference").asText();
      JsonNode resource = entries.get(reference);
      if (resource == null) {
        problems.add(error(where + ".focus[" + i + "]", "focus " + reference + " is not an entry of the Bundle"));
        continue;
      }
      counts.merge(resource.path("resourceType").asText(), 1, Integer::sum);
    }
    Set<String> allowed = new HashSet<>();
    for (MessageDefinitionFocusComponent expected : definition.getFocus()) {
      String type = expected.getCode();
      allowed.add(type);
      int count = counts.getOrDefault(type, 0);
      if (count < expected.getMin()) {
        problems.add(error(where + ".focus", "the event " + code + " needs at least " + expected.getMin()
            + " focal " + type + ", the message has " + count));
      }
      String max = expected.getMax();
      if (max != null && !max.equals("*") && count > Integer.parseInt(max)) {
        problems.add(error(where + ".focus", "the event " + code + " allows at most " + max + " focal " + type
            + ", the message has " + count));
      }
    }
    for (String type : counts.keySet()) {
      if (!allowed.contains(type)) {
        problems.add(error(where + ".focus", "the event " + code + " has no focal " + type
            + " in its MessageDefinition " + definition.getUrl()));
      }
    }
    return problems;
  }

  /** A copy of the Bundle in which each focal resource claims its focus profile in {@code meta.profile}. */
  JsonNode withFocusProfiles(JsonNode bundle) {
    JsonNode header = header(bundle);
    if (header == null) {
      return bundle;
    }
    MessageDefinition definition = byEvent.get(
        header.path("eventCoding").path("system").asText() + "|" + header.path("eventCoding").path("code").asText());
    if (definition == null) {
      return bundle;
    }
    Map<String, String> profiles = new HashMap<>();
    for (MessageDefinitionFocusComponent expected : definition.getFocus()) {
      if (expected.hasProfile()) {
        profiles.put(expected.getCode(), expected.getProfile());
      }
    }
    if (profiles.isEmpty()) {
      return bundle;
    }
    JsonNode copy = bundle.deepCopy();
    Map<String, JsonNode> entries = entriesByFullUrl(copy);
    for (JsonNode focus : header.path("focus")) {
      JsonNode resource = entries.get(focus.path("reference").asText());
      String profile = resource == null ? null : profiles.get(resource.path("resourceType").asText());
      if (profile == null || !(resource instanceof ObjectNode)) {
        continue;
      }
      ObjectNode meta = ((ObjectNode) resource).with("meta");
      ArrayNode claimed = meta.withArray("profile");
      boolean present = false;
      for (JsonNode url : claimed) {
        present |= url.asText().equals(profile);
      }
      if (!present) {
        claimed.add(profile);
      }
    }
    return copy;
  }

  private static JsonNode header(JsonNode bundle) {
    if (!"Bundle".equals(bundle.path("resourceType").asText()) || !"message".equals(bundle.path("type").asText())) {
      return null;
    }
    JsonNode first = bundle.path("entry").path(0).path("resource");
    return "MessageHeader".equals(first.path("resourceType").asText()) ? first : null;
  }

  private static Map<String, JsonNode> entriesByFullUrl(JsonNode bundle) {
    Map<String, JsonNode> entries = new HashMap<>();
    for (JsonNode entry : bundle.path("entry")) {
      entries.put(entry.path("fullUrl").asText(), entry.path("resource"));
    }
    return entries;
  }

  private static SingleValidationMessage error(String location, String text) {
    SingleValidationMessage message = new SingleValidationMessage();
    message.setSeverity(ResultSeverityEnum.ERROR);
    message.setLocationString(location);
    message.setMessage(text);
    message.setMessageId(ID);
    return message;
  }
}
