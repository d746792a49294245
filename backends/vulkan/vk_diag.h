/* vk_diag.h - diagnostics of the Vulkan backend for tests and tools (the backend itself
 * is reached through backends/backend.h).
 *
 * With BITNET_VK_VALIDATE=1 in the environment when the Vulkan instance is first created,
 * the Khronos validation layer (with synchronization validation) is enabled and every
 * message it reports at warning or error severity is printed to stderr and counted. */
#ifndef BN_VK_DIAG_H
#define BN_VK_DIAG_H

#include <stdbool.h>

/* Validation messages (warnings and errors) reported so far in this process. */
int bn_vk_validation_messages(void);
/* Whether the validation layer was found and enabled. */
bool bn_vk_validation_active(void);

#endif
