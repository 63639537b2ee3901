<?php
// vim: set ts=4 sw=4 sts=4 et:

/**
 * commerce-sync store events for X-Cart 5: an address book entry saved.
 */

namespace XLite\Module\CommerceSync\Webhooks\Controller\Admin;

use XLite\Module\CommerceSync\Webhooks\Core\Outbox;

/**
 * A customer's name, phone and company live on their addresses, whose field values are
 * rows of their own (XLite\Model\AddressFieldValue): saving an address changes no profile
 * row, so the Profile callbacks do not see it. The address book's save action
 * (X-Cart 5.3.2 classes/XLite/Controller/Admin/AddressBook.php, doActionSave) is where an
 * address is edited; after it, `customer.updated` for the profile it belongs to.
 */
abstract class AddressBook extends \XLite\Controller\Admin\AddressBook implements \XLite\Base\IDecorator
{
    /**
     * @return void
     */
    protected function doActionSave()
    {
        parent::doActionSave();

        $profile = $this->getProfile();
        if ($profile && $profile->isCommerceSyncCustomer()) {
            Outbox::record('customer.updated', $profile->getProfileId());
        }
    }
}
