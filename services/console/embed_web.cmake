# Writes OUT: a C++ source with each of FILES (in DIR) as a std::string_view,
# found by name through rmon::console::web_asset(). Bytes are written as hex
# escapes, so any content is safe.
string(REPLACE "," ";" FILES "${FILES}")
set(body "// Generated from services/console/web by embed_web.cmake; do not edit.\n")
string(APPEND body "#include \"web_assets.hpp\"\n\nnamespace rmon::console {\nnamespace {\n")
set(table "")
set(i 0)
foreach(f ${FILES})
  file(READ ${DIR}/${f} hex HEX)
  string(LENGTH "${hex}" n)
  math(EXPR bytes "${n} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "\\\\x\\1" escaped "${hex}")
  string(APPEND body "const char kFile${i}[] = \"${escaped}\";\n")
  string(APPEND table "    {\"${f}\", std::string_view(kFile${i}, ${bytes})},\n")
  math(EXPR i "${i} + 1")
endforeach()
string(APPEND body "}  // namespace\n\nconst std::vector<WebAsset>& web_assets() {\n")
string(APPEND body "  static const std::vector<WebAsset> assets{\n${table}  };\n  return assets;\n}\n\n")
string(APPEND body "}  // namespace rmon::console\n")
file(WRITE ${OUT}.tmp "${body}")
configure_file(${OUT}.tmp ${OUT} COPYONLY)  # rewritten only when it changed
