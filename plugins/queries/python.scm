; ponder's tag patterns for Python, placed before tree-sitter-python's queries/tags.scm.
; Functions defined directly in a class body are methods (decorated or not).
(class_definition
  body: (block (function_definition name: (identifier) @name) @definition.method))
(class_definition
  body: (block
    (decorated_definition
      definition: (function_definition name: (identifier) @name) @definition.method)))

; The reference is the superclass expression, not the whole class_definition: a reference with
; the class's own range would end the class's scope for the definitions after it.
(class_definition
  superclasses: (argument_list [
    (identifier) @name @reference.class
    (attribute attribute: (identifier) @name) @reference.class
  ]))
(type (identifier) @name) @reference.type
(generic_type (identifier) @name) @reference.type
