# regfs_add_test(NAME SOURCES... LIBS...)
# Declares a Catch2 test executable and registers it with CTest.
function(regfs_add_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} regfs_catch_main)
  add_test(NAME ${name} COMMAND ${name})
endfunction()
