; ponder's tag patterns for Python, placed before tree-sitter-python's queries/tags.scm.
; Functions defined directly in a class body are methods (decorated or not).
(class_definition
  body: (block (function_definition name: (identifier) @name) @definition.method))
(class_definition
  body: (block
    (decorated_definition
      definition: (function_definition name: (identifier) @name) @definition.method)))

(class_definition
  superclasses: (argument_list [
    (identifier) @name
    (attribute attribute: (identifier) @name)
  ])) @reference.class
(type (identifier) @name) @reference.type
