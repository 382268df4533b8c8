; ponder's tag patterns for C++, placed before c.scm (C++ is a superset of C: its macros,
; enums, typedefs and plain calls are tagged by c.scm) and tree-sitter-cpp's queries/tags.scm.
; Member functions declared or defined inside a class body are methods.
(field_declaration_list
  (function_definition
    declarator: (function_declarator
      declarator: [(field_identifier) (identifier) (destructor_name) (operator_name)] @name)) @definition.method)
(field_declaration_list
  (template_declaration
    (function_definition
      declarator: (function_declarator
        declarator: [(field_identifier) (identifier) (operator_name)] @name)) @definition.method))
(field_declaration_list
  (field_declaration
    declarator: (function_declarator
      declarator: [(field_identifier) (operator_name)] @name)) @definition.method)
(field_declaration_list
  (declaration
    declarator: (function_declarator
      declarator: [(identifier) (destructor_name)] @name)) @definition.method)
; Out-of-class definitions: `void Outer::method() {}`, `void Outer::Inner::method() {}`.
(function_definition
  declarator: (function_declarator
    declarator: (qualified_identifier
      name: [(identifier) (destructor_name) (operator_name)] @name))) @definition.method
(function_definition
  declarator: (function_declarator
    declarator: (qualified_identifier
      name: (qualified_identifier
        name: [(identifier) (destructor_name) (operator_name)] @name)))) @definition.method
(function_definition
  declarator: (function_declarator
    declarator: (qualified_identifier
      name: (qualified_identifier
        name: (qualified_identifier
          name: [(identifier) (destructor_name) (operator_name)] @name))))) @definition.method
(namespace_definition name: (namespace_identifier) @name) @definition.module
(class_specifier name: (type_identifier) @name body: (_)) @definition.class
(struct_specifier name: (type_identifier) @name body: (_)) @definition.class
(alias_declaration name: (type_identifier) @name) @definition.type
(concept_definition name: (identifier) @name) @definition.type

(call_expression function: (qualified_identifier name: (identifier) @name)) @reference.call
(call_expression  ; ns::Class::f(), std::chrono::steady_clock::now()
  function: (qualified_identifier
    name: (qualified_identifier name: (identifier) @name))) @reference.call
(call_expression
  function: (qualified_identifier
    name: (qualified_identifier
      name: (qualified_identifier name: (identifier) @name)))) @reference.call
; `static_cast<int>(x)` parses as a call of a template function: it is not one.
((call_expression function: (template_function name: (identifier) @name)) @reference.call
  (#not-any-of? @name "static_cast" "dynamic_cast" "const_cast" "reinterpret_cast"))
(call_expression
  function: (field_expression field: (template_method name: (field_identifier) @name))) @reference.call
(call_expression
  function: (qualified_identifier name: (template_function name: (identifier) @name))) @reference.call
(new_expression type: (type_identifier) @name) @reference.class
(new_expression type: (template_type name: (type_identifier) @name)) @reference.class
(new_expression type: (qualified_identifier name: (type_identifier) @name)) @reference.class
(new_expression
  type: (qualified_identifier name: (template_type name: (type_identifier) @name))) @reference.class
(base_class_clause (type_identifier) @name) @reference.class
(base_class_clause (template_type name: (type_identifier) @name)) @reference.class
(base_class_clause (qualified_identifier name: (type_identifier) @name)) @reference.class
(base_class_clause
  (qualified_identifier name: (template_type name: (type_identifier) @name))) @reference.class
(template_type name: (type_identifier) @name) @reference.type
