// The page served at / : one HTML document with its CSS and JavaScript
// inline (page.html, embedded at build time), so it needs nothing else.
#pragma once

#include <string_view>

namespace regfs::http {

std::string_view page_html();

}  // namespace regfs::http
