// The screens, each loaded when first opened (its own chunk), and who may open each: the roles
// are the platform's; a screen a role cannot use is not offered and, if typed in, says so. The
// services decide what each caller sees in the end; this only spares people dead ends.
import { createRouter, createWebHistory } from 'vue-router'

export const SCREENS = [
  { path: '/desk', name: 'desk', roles: ['window_clerk'], component: () => import('./screens/WindowDesk.vue') },
  { path: '/inbox', name: 'inbox', roles: ['community_reviewer', 'street_reviewer', 'bureau_approver', 'leader'],
    component: () => import('./screens/ReviewerInbox.vue') },
  { path: '/grid', name: 'grid', roles: ['grid_worker', 'leader', 'admin', 'community_reviewer', 'street_reviewer', 'auditor'],
    component: () => import('./screens/GridMap.vue') },
  { path: '/worker', name: 'worker', roles: ['grid_worker'], component: () => import('./screens/GridWorker.vue') },
  { path: '/dashboard', name: 'dashboard', roles: ['leader', 'admin', 'auditor'],
    component: () => import('./screens/LeaderDashboard.vue') },
  { path: '/audit', name: 'audit', roles: ['auditor', 'leader', 'admin'], component: () => import('./screens/Auditor.vue') },
  { path: '/notifications', name: 'notifications', roles: null, component: () => import('./screens/Notifications.vue') },
]

export const router = createRouter({
  history: createWebHistory('/'),
  routes: [
    { path: '/', name: 'home', component: () => import('./screens/Home.vue') },
    // printable: no shell around it
    { path: '/desk/receipt/:caseId', name: 'receipt', meta: { bare: true, roles: ['window_clerk'] },
      component: () => import('./screens/Receipt.vue') },
    ...SCREENS.map(({ roles, ...route }) => ({ ...route, meta: { roles } })),
    { path: '/:unknown(.*)*', redirect: '/' },
  ],
})
