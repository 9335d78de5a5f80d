#pragma once
// The console's pages (services/console/web), compiled in by embed_web.cmake:
// nothing to install or build at run time, no CDN.

#include <string_view>
#include <vector>

namespace rmon::console {

struct WebAsset {
  std::string_view name;  // "index.html", "app.js", "style.css"
  std::string_view body;
};

const std::vector<WebAsset>& web_assets();

}  // namespace rmon::console
