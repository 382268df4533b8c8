; ponder's tag patterns for JSX (JavaScript and TSX): a capitalised element is a use of a
; component.
(jsx_self_closing_element
  name: (identifier) @name
  (#match? @name "^[A-Z]")) @reference.call
(jsx_opening_element
  name: (identifier) @name
  (#match? @name "^[A-Z]")) @reference.call
(jsx_self_closing_element
  name: (member_expression property: (property_identifier) @name)) @reference.call
(jsx_opening_element
  name: (member_expression property: (property_identifier) @name)) @reference.call
