/* vk_instance.c - the Vulkan loader and instance. The loader is opened at run time through
 * volk, so the binary starts on machines without Vulkan; one instance is shared by device
 * enumeration and every open backend. With BITNET_VK_VALIDATE=1 the Khronos validation
 * layer is enabled (core and synchronization validation) and its warnings and errors are
 * printed and counted (vk_diag.h), so tests can fail on any of them.
 *
 * Threads: creation, the reference count and destruction are under one lock, and every
 * user of the physical devices (enumeration, device_info, open) holds a reference while
 * it works, so a backend closing in another thread cannot pull the instance away. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_diag.h"
#include "vk_internal.h"

static struct {
    VkInstance inst;
    bool tried;
    char why[256];
    int refs;
    bool validation;
    VkDebugUtilsMessengerEXT messenger;
    atomic_int messages;
} g_vk;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const k_validation_layer = "VK_LAYER_KHRONOS_validation";

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                                 VkDebugUtilsMessageTypeFlagsEXT type,
                                                 const VkDebugUtilsMessengerCallbackDataEXT *d,
                                                 void *user) {
    (void)user;
    if (sev < VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) return VK_FALSE;
    const bool counted = (type & VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT) != 0;
    if (counted) atomic_fetch_add(&g_vk.messages, 1);
    fprintf(stderr, "vulkan %s%s: %s\n",
            sev >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT ? "error" : "warning",
            counted ? " (validation)" : "", d && d->pMessage ? d->pMessage : "?");
    return VK_FALSE;
}

static bool has_layer(const char *name) {
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0) return false;
    VkLayerProperties *p = calloc(n, sizeof *p);
    bool found = false;
    if (p && vkEnumerateInstanceLayerProperties(&n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++) found |= strcmp(p[i].layerName, name) == 0;
    free(p);
    return found;
}

static bool has_instance_ext(const char *layer, const char *name) {
    uint32_t n = 0;
    if (vkEnumerateInstanceExtensionProperties(layer, &n, NULL) != VK_SUCCESS || n == 0)
        return false;
    VkExtensionProperties *p = calloc(n, sizeof *p);
    bool found = false;
    if (p && vkEnumerateInstanceExtensionProperties(layer, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++) found |= strcmp(p[i].extensionName, name) == 0;
    free(p);
    return found;
}

/* Creates the instance if needed; called with g_lock held. */
static VkInstance instance_locked(char *why, size_t why_len) {
    if (!g_vk.tried) {
        g_vk.tried = true;
        g_vk.why[0] = 0;
        if (volkInitialize() != VK_SUCCESS) {
            snprintf(g_vk.why, sizeof g_vk.why,
                     "no Vulkan loader found (libvulkan.so.1 could not be opened)");
        } else if (volkGetInstanceVersion() < VK_API_VERSION_1_1) {
            snprintf(g_vk.why, sizeof g_vk.why, "the Vulkan loader is older than Vulkan 1.1");
        } else {
            const char *env = getenv("BITNET_VK_VALIDATE");
            bool want_val = env && env[0] && strcmp(env, "0") != 0;
            const char *layers[1];
            const char *exts[2];
            uint32_t n_layers = 0, n_exts = 0;
            bool sync_val = false;
            if (want_val) {
                if (has_layer(k_validation_layer)) {
                    layers[n_layers++] = k_validation_layer;
                    if (has_instance_ext(NULL, VK_EXT_DEBUG_UTILS_EXTENSION_NAME) ||
                        has_instance_ext(k_validation_layer, VK_EXT_DEBUG_UTILS_EXTENSION_NAME))
                        exts[n_exts++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
                    if (has_instance_ext(k_validation_layer,
                                         VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME)) {
                        exts[n_exts++] = VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME;
                        sync_val = true;
                    }
                } else {
                    fprintf(stderr,
                            "warning: BITNET_VK_VALIDATE is set but the validation layer "
                            "%s is not installed (vulkan-validationlayers)\n",
                            k_validation_layer);
                }
            }
            VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                                     .pApplicationName = "bitnet",
                                     .pEngineName = "bitnet",
                                     .apiVersion = VK_API_VERSION_1_1};
            VkValidationFeatureEnableEXT enables[] = {
                VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT};
            VkValidationFeaturesEXT vf = {.sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT,
                                          .enabledValidationFeatureCount = 1,
                                          .pEnabledValidationFeatures = enables};
            VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                                       .pNext = sync_val ? &vf : NULL,
                                       .pApplicationInfo = &app,
                                       .enabledLayerCount = n_layers,
                                       .ppEnabledLayerNames = layers,
                                       .enabledExtensionCount = n_exts,
                                       .ppEnabledExtensionNames = exts};
            VkResult r = vkCreateInstance(&ci, NULL, &g_vk.inst);
            if (r != VK_SUCCESS) {
                g_vk.inst = VK_NULL_HANDLE;
                snprintf(g_vk.why, sizeof g_vk.why, "no Vulkan driver found (vkCreateInstance: %s)",
                         vk_result_name(r));
            } else {
                volkLoadInstance(g_vk.inst);
                g_vk.validation = n_layers > 0;
                if (n_layers > 0 && n_exts > 0 &&
                    !strcmp(exts[0], VK_EXT_DEBUG_UTILS_EXTENSION_NAME)) {
                    VkDebugUtilsMessengerCreateInfoEXT mi = {
                        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
                        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
                        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
                        .pfnUserCallback = on_message};
                    if (vkCreateDebugUtilsMessengerEXT(g_vk.inst, &mi, NULL, &g_vk.messenger) !=
                        VK_SUCCESS)
                        g_vk.messenger = VK_NULL_HANDLE;
                }
            }
        }
    }
    if (!g_vk.inst && why) snprintf(why, why_len, "%s", g_vk.why);
    return g_vk.inst;
}

VkInstance vk_instance_acquire(char *why, size_t why_len) {
    pthread_mutex_lock(&g_lock);
    VkInstance inst = instance_locked(why, why_len);
    if (inst) g_vk.refs++;
    pthread_mutex_unlock(&g_lock);
    return inst;
}

void vk_instance_release(bool destroy_when_unused) {
    pthread_mutex_lock(&g_lock);
    if (g_vk.refs > 0) g_vk.refs--;
    if (destroy_when_unused && g_vk.refs == 0 && g_vk.inst) {
        if (g_vk.messenger) vkDestroyDebugUtilsMessengerEXT(g_vk.inst, g_vk.messenger, NULL);
        vkDestroyInstance(g_vk.inst, NULL);
        g_vk.inst = VK_NULL_HANDLE;
        g_vk.messenger = VK_NULL_HANDLE;
        g_vk.validation = false;
        g_vk.tried = false;
    }
    pthread_mutex_unlock(&g_lock);
}

int bn_vk_validation_messages(void) {
    return atomic_load(&g_vk.messages);
}

bool bn_vk_validation_active(void) {
    return g_vk.validation && g_vk.messenger != VK_NULL_HANDLE;
}

/* A device is usable when it speaks Vulkan 1.1 and has a compute queue. */
static bool usable(VkPhysicalDevice pd) {
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties(pd, &p);
    if (p.apiVersion < VK_API_VERSION_1_1) return false;
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    VkQueueFamilyProperties q[32];
    if (n > 32) n = 32;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, q);
    for (uint32_t i = 0; i < n; i++)
        if (q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) return true;
    return false;
}

int vk_physical_devices(VkPhysicalDevice *devs, char *why, size_t why_len) {
    VkInstance inst = g_vk.inst; /* the caller holds a reference */
    if (!inst) {
        if (why) snprintf(why, why_len, "%s", g_vk.why[0] ? g_vk.why : "no Vulkan instance");
        return 0;
    }
    uint32_t n = 0;
    if (vkEnumeratePhysicalDevices(inst, &n, NULL) < 0 || n == 0) {
        if (why) snprintf(why, why_len, "the Vulkan loader found no device");
        return 0;
    }
    VkPhysicalDevice all[64];
    if (n > 64) n = 64;
    if (vkEnumeratePhysicalDevices(inst, &n, all) < 0) n = 0;
    int k = 0;
    for (uint32_t i = 0; i < n && k < VK_MAX_DEVICES; i++)
        if (usable(all[i])) devs[k++] = all[i];
    if (k == 0 && why)
        snprintf(why, why_len, "no Vulkan device with Vulkan 1.1 and a compute queue");
    return k;
}
