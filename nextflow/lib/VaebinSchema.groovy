//
// Checks the pipeline parameters against nextflow_schema.json and prints --help from it.
//
// The nf-schema plugin cannot be downloaded in offline setups, so this covers the part of JSON
// Schema the pipeline's schema uses: type, enum, pattern, minimum/maximum, required, and the
// nf-core `format: file-path|directory-path` with `exists: true`.
//

import groovy.json.JsonSlurper
import java.nio.file.Files
import java.nio.file.Path
import nextflow.Nextflow

class VaebinSchema {

    // Parameters Nextflow or the profiles set that the user does not choose.
    static final Set<String> IGNORED_PARAMETERS = [ 'help' ] as Set

    /** All parameter definitions of the schema, name -> definition, in schema order. */
    static Map<String, Map> parameterDefinitions(Path schemaPath) {
        def schema = new JsonSlurper().parse(schemaPath.toFile()) as Map
        def definitions = new LinkedHashMap<String, Map>()
        def groups = ((schema['$defs'] ?: schema['definitions'] ?: [:]) as Map).values()
        for (group in groups) {
            def properties = (group as Map).properties as Map ?: [:]
            properties.each { name, definition -> definitions[name as String] = definition as Map }
        }
        ((schema.properties ?: [:]) as Map).each { name, definition ->
            definitions[name as String] = definition as Map
        }
        return definitions
    }

    /** Names the schema marks as required, over all groups. */
    static List<String> requiredParameters(Path schemaPath) {
        def schema = new JsonSlurper().parse(schemaPath.toFile()) as Map
        def required = new ArrayList<String>((schema.required ?: []) as List<String>)
        def groups = ((schema['$defs'] ?: schema['definitions'] ?: [:]) as Map).values()
        for (group in groups) {
            required.addAll(((group as Map).required ?: []) as List<String>)
        }
        return required
    }

    /** Problems of one value against its definition; empty when the value is valid. */
    static List<String> checkValue(String name, Object value, Map definition) {
        def problems = []
        if (value == null) {
            return problems
        }
        def type = definition.type
        def types = type instanceof List ? type as List : [ type ]
        if (type && !types.any { expected -> hasType(value, expected as String) }) {
            problems << "--${name}: expected ${types.join(' or ')}, got '${value}' (${value.getClass().simpleName})"
            return problems
        }
        if (definition.enum && !(definition.enum as List).contains(value)) {
            problems << "--${name}: '${value}' is not one of ${(definition.enum as List).join(', ')}"
        }
        if (definition.pattern && value instanceof CharSequence && !(value.toString() ==~ definition.pattern)) {
            problems << "--${name}: '${value}' does not match the pattern ${definition.pattern}"
        }
        if (value instanceof Number) {
            if (definition.minimum != null && value < (definition.minimum as Number)) {
                problems << "--${name}: ${value} is below the minimum ${definition.minimum}"
            }
            if (definition.maximum != null && value > (definition.maximum as Number)) {
                problems << "--${name}: ${value} is above the maximum ${definition.maximum}"
            }
        }
        if (definition.exists && value instanceof CharSequence) {
            def path = Nextflow.file(value.toString()) as Path
            if (definition.format == 'file-path' && !Files.isRegularFile(path)) {
                problems << "--${name}: file not found: ${value}"
            }
            if (definition.format == 'directory-path' && !Files.isDirectory(path)) {
                problems << "--${name}: directory not found: ${value}"
            }
        }
        return problems
    }

    static boolean hasType(Object value, String expected) {
        switch (expected) {
            case 'string': return value instanceof CharSequence
            case 'integer': return value instanceof Integer || value instanceof Long || value instanceof BigInteger
            case 'number': return value instanceof Number
            case 'boolean': return value instanceof Boolean
            case 'null': return value == null
            default: return true
        }
    }

    /** The snake_case name Nextflow also registers a --kebab-case or camelCase option under. */
    static String canonicalName(String name) {
        return name.replace('-', '_').replaceAll(/([a-z0-9])([A-Z])/) { all, before, upper ->
            "${before}_${upper.toLowerCase()}"
        }
    }

    /**
     * Aborts the run with every problem listed when a parameter breaks the schema; warns about
     * parameters the schema does not know (usually a typo).
     */
    static void validateParameters(Map params, Path schemaPath, Object log) {
        def definitions = parameterDefinitions(schemaPath)
        def problems = []
        for (name in requiredParameters(schemaPath)) {
            if (params[name] == null || params[name] == '') {
                problems << "--${name} is required"
            }
        }
        definitions.each { name, definition ->
            problems.addAll(checkValue(name, params[name], definition))
        }
        def unknown = params.keySet().findAll { name ->
            def key = name as String
            !definitions.containsKey(key) && !definitions.containsKey(canonicalName(key)) &&
                !IGNORED_PARAMETERS.contains(key)
        }
        if (unknown) {
            log.warn("Parameters not in ${schemaPath.fileName} (typo?): ${unknown.collect { "--${it}" }.join(', ')}")
        }
        if (problems) {
            Nextflow.error("Invalid parameters:\n  - " + problems.join('\n  - '))
        }
    }

    /** The --help text: every parameter with its type, default and description, by group. */
    static String helpText(Path schemaPath, String command) {
        def schema = new JsonSlurper().parse(schemaPath.toFile()) as Map
        def lines = [ "Usage: ${command}", '' ]
        if (schema.description) {
            lines << schema.description.toString() << ''
        }
        def groups = ((schema['$defs'] ?: [:]) as Map).values()
        for (group in groups) {
            def groupMap = group as Map
            lines << "${groupMap.title ?: 'Parameters'}:"
            ((groupMap.properties ?: [:]) as Map).each { name, value ->
                def definition = value as Map
                if (definition.hidden) {
                    return
                }
                def choices = definition.enum ? " (${(definition.enum as List).join('|')})" : ''
                def default_text = definition.containsKey('default') ? " [default: ${definition.default}]" : ''
                lines << "  --${name.toString().padRight(22)} ${definition.type ?: ''}${choices}${default_text}"
                if (definition.description) {
                    lines << "      ${definition.description}"
                }
            }
            lines << ''
        }
        return lines.join('\n')
    }
}
