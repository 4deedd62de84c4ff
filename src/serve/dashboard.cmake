# The dashboard page is a real HTML file (dashboard.html, inline CSS and JS) turned into a generated
# C++ source at build time; dashboard.cpp serves it as dashboard_html().
# asdcap_add_dashboard(TARGET) adds both sources to TARGET (asdcap_serve). Editing the HTML
# regenerates and recompiles only that source.
set(ASDCAP_DASHBOARD_DIR ${CMAKE_CURRENT_LIST_DIR})
function(asdcap_add_dashboard target)
  set(html ${ASDCAP_DASHBOARD_DIR}/dashboard.html)
  set(generated ${CMAKE_CURRENT_BINARY_DIR}/dashboard_page.cpp)
  add_custom_command(
    OUTPUT ${generated}
    COMMAND ${CMAKE_COMMAND} -DINPUT=${html} -DOUTPUT=${generated} -DNAMESPACE=asdcap::serve
            -DFUNCTION=dashboard_page_text -P ${ASDCAP_DASHBOARD_DIR}/embed_text.cmake
    DEPENDS ${html} ${ASDCAP_DASHBOARD_DIR}/embed_text.cmake
    COMMENT "Embedding the dashboard page"
    VERBATIM)
  target_sources(${target} PRIVATE ${ASDCAP_DASHBOARD_DIR}/dashboard.cpp ${generated})
endfunction()
